"""Shared helpers for the operations artefacts: dashboards, alert rules, docs."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
ALERTS = ROOT / "prometheus" / "ilyd-alerts.yaml"
ALERT_TESTS = ROOT / "prometheus" / "ilyd-alerts.test.yaml"
RUNBOOK = ROOT / "docs" / "runbook.md"

# Series Prometheus writes itself for every target; no exporter serves them.
PROMETHEUS_OWN = frozenset({"up"})

_KEYWORDS = frozenset({
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan",
})
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
# A name not preceded by a word character, `.` or `$` (so not `5m`, `1e3` or `$org`),
# with its label matchers if any.
_SELECTOR = re.compile(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?(\s*\()?")


def selectors(expr: str) -> list[tuple[str, str]]:
    """(metric name, label matcher text) of every vector selector in a PromQL expression.

    A small scanner rather than a PromQL parser: enough for the expressions we write
    (strings only inside label matchers), and checked by its own test.
    """
    text = _GROUPING.sub(" ", _RANGE.sub(" ", expr))
    found = []
    for match in _SELECTOR.finditer(text):
        name, matchers, call = match.groups()
        if call is not None or name in _KEYWORDS:
            continue  # a function call or an operator
        found.append((name, matchers or ""))
    return found


def metric_names(expr: str) -> set[str]:
    """Every metric name an expression reads."""
    return {name for name, _ in selectors(expr)}


def load_dashboard(path: Path) -> dict[str, Any]:
    """A dashboard file parsed (fails the test with the file name when it is not JSON)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        pytest.fail(f"{path.name}: not valid JSON: {exc}")


def data_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel that shows data (rows are layout only), nested row panels included."""
    out = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            out.extend(panel.get("panels", []))
        else:
            out.append(panel)
    return out


def dashboard_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    exprs = [
        (f"panel {panel.get('title')!r} target {target.get('refId')}", target["expr"])
        for panel in data_panels(dashboard)
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable.get("query")
            text = query.get("query", "") if isinstance(query, dict) else str(query)
            exprs.append((f"variable ${variable['name']}", _label_values_selector(text)))
    return exprs


def _label_values_selector(query: str) -> str:
    """`label_values(metric{…}, label)` -> `metric{…}` (Grafana's syntax, not PromQL)."""
    match = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query)
    return match.group(1) if match else query


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule of prometheus/ilyd-alerts.yaml."""
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def exported_names() -> set[str]:
    """Every sample name the daemon's /metrics can serve, from ilyd.metrics.REGISTRY.

    Built from the metric families and their types, not from current samples, so a
    labelled metric nobody has incremented yet still counts as exported.
    """
    from ilyd.metrics import REGISTRY

    suffixes = {
        "counter": ("_total",),
        "info": ("_info",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("", "_sum", "_count"),
    }
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
    return names


def per_org_names() -> set[str]:
    """Sample names of the metrics that carry the `org` label."""
    from prometheus_client import Counter, Histogram

    from ilyd import metrics

    names = set()
    for metric in metrics.PER_ORG:
        (family,) = metric.describe()
        if isinstance(metric, Counter):
            names.add(f"{family.name}_total")
        elif isinstance(metric, Histogram):
            names.update(f"{family.name}{s}" for s in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


def prometheus_tool(name: str) -> str:
    """Path of `name` (prometheus, promtool: Debian's package prometheus); skips the test
    without it (fails instead under CI=true)."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is required under CI=true (make system-deps installs it)")
        pytest.skip(f"{name} not installed (Debian package prometheus; make system-deps)")
    return path


def promtool() -> str:
    """Path of promtool (see `prometheus_tool`)."""
    return prometheus_tool("promtool")


@pytest.fixture(params=DASHBOARDS, ids=[p.name for p in DASHBOARDS])
def dashboard(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Each dashboard JSON file, parsed."""
    return load_dashboard(request.param)
