"""`create_many` against devorg: several Tooling records in one call, each answered with
its own id or its own error."""

from __future__ import annotations

import uuid

import pytest

from ilyd.errors import SalesforceError
from ilyd.salesforce.rest import RestClient
from ilyd.salesforce.tooling_composite import CREATES_PER_CALL, create_many

from .conftest import Admin


def _field(sobject: str) -> dict[str, object]:
    name = f"Ily_T{uuid.uuid4().hex[:10]}"
    return {"FullName": f"{sobject}.{name}__c",
            "Metadata": {"label": name, "type": "Text", "length": 40}}


def test_each_record_gets_its_id_or_its_error_and_the_call_counts_once(
        rest: RestClient, admin: Admin) -> None:
    before = admin.calls()["by_endpoint"].get("POST tooling.composite", 0)
    results = create_many(rest, "CustomField", [_field("Account"), _field("Nowhere"),
                                                _field("Lead")])
    assert admin.calls()["by_endpoint"]["POST tooling.composite"] == before + 1
    first, refused, third = results
    assert isinstance(first, str)
    assert isinstance(third, str)
    assert first.startswith("00N")
    assert third.startswith("00N")
    assert isinstance(refused, SalesforceError)
    assert refused.error_code
    assert refused.status >= 400


def test_more_creates_than_one_call_takes_are_refused_before_any_call(
        rest: RestClient) -> None:
    with pytest.raises(ValueError, match="1 to"):
        create_many(rest, "CustomField", [_field("Account")] * (CREATES_PER_CALL + 1))
