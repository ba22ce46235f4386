"""Sforce-Limit-Info parsing and the per-org usage gauge."""

from __future__ import annotations

import uuid

import pytest

from ilyd.metrics import REGISTRY
from ilyd.salesforce.limits import ApiUsage, Usage, parse_limit_info


@pytest.mark.parametrize(
    ("header", "usage"),
    [
        ("api-usage=18/5000", Usage(18, 5000)),
        ("api-usage=25/5000; per-app-api-usage=17/250(appName=sample-connected-app)",
         Usage(25, 5000)),
        ("per-app-api-usage=17/250(appName=x); api-usage=3/15000", Usage(3, 15000)),
        ("per-app-api-usage=17/250(appName=x)", None),
        ("", None),
        (None, None),
        ("garbage", None),
    ],
)
def test_org_usage_is_read_from_the_header_and_per_app_usage_ignored(
    header: str | None, usage: Usage | None
) -> None:
    assert parse_limit_info(header) == usage


def test_observed_usage_is_exported_per_org_and_removed_on_forget() -> None:
    org = f"org-{uuid.uuid4().hex[:8]}"
    tracker = ApiUsage(org)
    assert tracker.current is None
    tracker.observe("api-usage=250/1000")
    assert tracker.current == Usage(250, 1000)
    assert REGISTRY.get_sample_value("ilyd_sf_api_usage_ratio", {"org": org}) == 0.25
    tracker.forget()
    assert REGISTRY.get_sample_value("ilyd_sf_api_usage_ratio", {"org": org}) is None


def test_usage_is_not_exported_when_per_org_series_are_off() -> None:
    org = f"org-{uuid.uuid4().hex[:8]}"
    ApiUsage(org, export=False).observe("api-usage=1/2")
    assert REGISTRY.get_sample_value("ilyd_sf_api_usage_ratio", {"org": org}) is None
