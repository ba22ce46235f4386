"""Every metric a dashboard or an alert rule reads is one the running code exports."""

from __future__ import annotations

import pytest

from .conftest import (
    DASHBOARDS,
    PROMETHEUS_OWN,
    alert_rules,
    dashboard_exprs,
    exported_names,
    load_dashboard,
    metric_names,
    selectors,
)


def test_selector_scanner_finds_metrics_and_skips_functions_labels_and_windows():
    expr = (
        'sum by (org) (rate(ilyd_a_total{job=~"$job", le="1.0"}[$__rate_interval]))'
        " / on (org) group_left (mode) (ilyd_b == 1) unless ilyd_c offset 30m"
        ' or vector(0) > bool 1e3 and absent(up{job="ilyd"}) and time() - ilyd_d'
    )
    assert metric_names(expr) == {"ilyd_a_total", "ilyd_b", "ilyd_c", "up", "ilyd_d"}
    assert selectors('ilyd_x{org=~"$org"}') == [("ilyd_x", '{org=~"$org"}')]


def test_exported_names_follow_the_exposition_suffixes():
    names = exported_names()
    assert "ilyd_events_received_total" in names
    assert "ilyd_events_received" not in names
    assert {"ilyd_event_to_write_seconds_bucket", "ilyd_event_to_write_seconds_count"} <= names
    assert "ilyd_build_info" in names
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= names


def _used() -> list[tuple[str, str, str]]:
    used = []
    for path in DASHBOARDS:
        for where, expr in dashboard_exprs(load_dashboard(path)):
            used.extend((path.name, where, name) for name in metric_names(expr))
    for rule in alert_rules():
        used.extend(("ilyd-alerts.yaml", rule["alert"], n) for n in metric_names(rule["expr"]))
    return used


def test_every_query_reads_at_least_one_metric():
    sources = [(path.name, where, expr) for path in DASHBOARDS
               for where, expr in dashboard_exprs(load_dashboard(path))]
    sources += [("ilyd-alerts.yaml", rule["alert"], rule["expr"]) for rule in alert_rules()]
    for source, where, expr in sources:
        assert metric_names(expr), f"{source} {where}: no metric found in {expr!r}"


@pytest.mark.parametrize("source", [p.name for p in DASHBOARDS] + ["ilyd-alerts.yaml"])
def test_every_metric_used_is_exported_by_the_daemon(source):
    exported = exported_names() | PROMETHEUS_OWN
    missing = sorted({(where, name) for src, where, name in _used()
                      if src == source and name not in exported})
    assert not missing, f"{source} reads metrics ilyd does not export: {missing}"
