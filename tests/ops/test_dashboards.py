"""Grafana dashboards: classic JSON that file provisioning loads as is, and panels that read."""

from __future__ import annotations

import re
import subprocess

import yaml

from .conftest import (
    DASHBOARDS,
    dashboard_exprs,
    data_panels,
    load_dashboard,
    per_org_names,
    promtool,
    selectors,
)

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def test_both_dashboards_are_shipped():
    assert {p.name for p in DASHBOARDS} >= {"ilyd-overview.json", "ilyd-org.json"}


def test_every_dashboard_has_a_fixed_uid_unique_across_files():
    uids = [load_dashboard(path).get("uid") for path in DASHBOARDS]
    assert all(isinstance(uid, str) and re.fullmatch(r"[a-z0-9-]{1,40}", uid) for uid in uids)
    assert len(set(uids)) == len(uids)


def test_dashboard_is_classic_json_for_file_provisioning(dashboard):
    assert dashboard.get("id") is None  # provisioning assigns ids; a fixed one clashes
    assert isinstance(dashboard.get("schemaVersion"), int)
    assert dashboard.get("title")
    assert "__inputs" not in dashboard
    assert "${DS_" not in repr(dashboard)  # import-wizard placeholders provisioning can't fill


def test_dashboard_has_a_prometheus_datasource_variable(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


def test_org_variable_lists_the_orgs_from_ilyd_org_up(dashboard):
    org = {v["name"]: v for v in dashboard["templating"]["list"]}["org"]
    query = org["query"]["query"] if isinstance(org["query"], dict) else org["query"]
    assert org["type"] == "query"
    assert query == "label_values(ilyd_org_up, org)"
    assert org["datasource"] == DATASOURCE


def test_every_panel_and_target_uses_the_datasource_variable(dashboard):
    for panel in data_panels(dashboard):
        assert panel.get("datasource") == DATASOURCE, panel.get("title")
        assert panel.get("targets"), f"{panel.get('title')}: no query"
        for target in panel["targets"]:
            assert target.get("datasource") == DATASOURCE, panel.get("title")


def test_every_panel_has_a_unit_and_a_description(dashboard):
    for panel in data_panels(dashboard):
        title = panel.get("title")
        assert title, panel
        assert panel.get("description", "").strip(), f"{title}: no description"
        assert panel.get("fieldConfig", {}).get("defaults", {}).get("unit"), f"{title}: no unit"


def test_panel_ids_and_ref_ids_are_unique(dashboard):
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(set(ids)) == len(ids)
    for panel in data_panels(dashboard):
        refs = [target["refId"] for target in panel["targets"]]
        assert len(set(refs)) == len(refs), panel["title"]


def test_panels_fit_the_grid_without_overlapping(dashboard):
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["w"] >= 1, panel["title"]
        assert 0 <= pos["x"] <= 24 - pos["w"], panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_every_rate_uses_rate_interval(dashboard):
    for where, expr in dashboard_exprs(dashboard):
        for call in re.finditer(r"\b(?:rate|irate|increase)\s*\(", expr):
            window = re.search(r"\[([^\]]*)\]", expr[call.end():])
            assert window is not None, f"{where}: {call.group(0)} without a range"
            assert window.group(1) == "$__rate_interval", f"{where}: [{window.group(1)}]"


def test_every_selector_is_scoped_to_the_chosen_job_and_orgs(dashboard):
    org_series = per_org_names()
    for where, expr in dashboard_exprs(dashboard):
        if where.startswith("variable"):
            continue
        for name, matchers in selectors(expr):
            assert 'job=~"$job"' in matchers, f"{where}: {name} not filtered by $job"
            if name in org_series:
                assert 'org=~"$org"' in matchers, f"{where}: {name} not filtered by $org"


def test_the_dashboards_link_to_each_other():
    uids = {load_dashboard(p)["uid"] for p in DASHBOARDS}
    for path in DASHBOARDS:
        dashboard = load_dashboard(path)
        targets = {m for link in dashboard.get("links", [])
                   for m in re.findall(r"/d/([\w-]+)", link.get("url", ""))}
        assert targets, f"{path.name}: no link to the other dashboard"
        assert targets <= uids - {dashboard["uid"]}


def test_every_panel_query_is_valid_promql(dashboard, tmp_path):
    # promtool parses rule expressions: each query becomes a recording rule once Grafana's
    # variables are replaced the way Grafana would (a regex for multi-value variables).
    values = {"$__rate_interval": "1m", "$job": ".*", "$org": ".*"}
    rules = []
    for number, (where, query) in enumerate(dashboard_exprs(dashboard)):
        if where.startswith("variable"):
            continue
        expr = query
        for variable, value in values.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"dashboard:query_{number}", "expr": expr})
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "queries", "rules": rules}]}))
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
