"""Per-org children created at 0 when an org is configured, and removed when it leaves."""

from __future__ import annotations

import pytest
from prometheus_client import Counter, Gauge, Histogram

from ilyd import metrics


def _samples(org: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ilyd.metrics.REGISTRY labelled with `org`: {(name, labels): value}."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in metrics.REGISTRY.collect()
        for sample in family.samples
        if sample.labels.get("org") == org
    }


def test_prepare_org_creates_every_per_org_counter_at_zero():
    metrics.prepare_org("po-new")
    try:
        names = {name for name, _ in _samples("po-new")}
        for metric in metrics.PER_ORG:
            if isinstance(metric, Counter):
                (family,) = metric.describe()
                assert f"{family.name}_total" in names, f"{family.name} not pre-created"
        assert {"ilyd_org_up", "ilyd_org_needs_reauth", "ilyd_resync_running"} <= names
        assert all(v == 0 for v in _samples("po-new").values())
    finally:
        metrics.forget_org("po-new")


def test_prepare_org_creates_one_resync_child_per_stage_the_resync_counts():
    from ilyd.resync.progress import STAGES

    assert metrics.RESYNC_STAGES == STAGES
    metrics.prepare_org("po-stages")
    try:
        stages = {dict(labels)["stage"] for name, labels in _samples("po-stages")
                  if name == "ilyd_resync_records_total"}
        assert stages == set(STAGES)
    finally:
        metrics.forget_org("po-stages")


def test_prepare_org_leaves_gauges_whose_zero_would_be_false_to_their_first_value():
    metrics.prepare_org("po-gauges")
    try:
        names = {name for name, _ in _samples("po-gauges")}
        # 0 would read "last event in 1970", "no API used" and "inbox empty".
        assert not names & {"ilyd_last_event_timestamp_seconds", "ilyd_sf_api_usage_ratio",
                            "ilyd_inbox_records", "ilyd_org_mode"}
    finally:
        metrics.forget_org("po-gauges")


def test_prepare_org_keeps_counts_already_made_and_forget_org_removes_everything():
    metrics.prepare_org("po-keep")
    metrics.REPLAY_FALLBACKS.labels(org="po-keep").inc()
    metrics.prepare_org("po-keep")  # a second call (a reload) does not reset anything
    assert metrics.REGISTRY.get_sample_value("ilyd_replay_fallbacks_total",
                                             {"org": "po-keep"}) == 1
    metrics.forget_org("po-keep")
    assert _samples("po-keep") == {}


def test_every_per_org_counter_an_alert_reads_exists_from_the_org_start():
    from .conftest import alert_rules, metric_names, per_org_names

    metrics.prepare_org("po-rules")
    try:
        created = {name for name, _ in _samples("po-rules")}
        for rule in alert_rules():
            for name in metric_names(rule["expr"]) & per_org_names():
                if name.endswith("_total"):
                    assert name in created, f"{rule['alert']} reads {name}, not pre-created"
    finally:
        metrics.forget_org("po-rules")


def test_every_metric_with_an_org_label_is_recorded_as_per_org_and_no_other():
    for value in vars(metrics).values():
        if not isinstance(value, Counter | Gauge | Histogram):
            continue
        if any(value is metric for metric in metrics.PER_ORG):
            value.remove_by_labels({"org": "po-none"})  # accepted: it has the label
        else:
            with pytest.raises(ValueError, match="label names"):
                value.remove_by_labels({"org": "po-none"})


def test_an_org_counter_shows_a_series_named_in_advance_at_zero_until_it_is_counted():
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    counter = metrics.OrgCounter("t_things", "Things.", ["org", "kind"], registry=registry)
    counter.at_zero("a", "x")
    counter.at_zero("b", "x")

    def series() -> dict[tuple[str, str], float]:
        (family,) = registry.collect()
        found = [((s.labels["org"], s.labels["kind"]), s.value) for s in family.samples]
        assert len(found) == len(dict(found)), f"a series given twice: {found}"
        return dict(found)

    assert series() == {("a", "x"): 0, ("b", "x"): 0}
    counter.labels(org="a", kind="x").inc(2)
    counter.labels(org="c", kind="y").inc()
    assert series() == {("a", "x"): 2, ("b", "x"): 0, ("c", "y"): 1}
    counter.remove_by_labels({"org": "a"})
    counter.remove("c", "y")
    assert series() == {("b", "x"): 0}
    counter.remove_by_labels({"kind": "x"})
    assert series() == {}
