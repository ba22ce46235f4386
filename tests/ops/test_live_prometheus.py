"""A real Prometheus scrapes a live daemon that has enriched records — as shipped (one
process, the bundled dataset, one devorg org), and over worker processes: every dashboard
panel shows data, no panel query errors, every alert rule loads healthy and none fires.

Each panel's template variables are filled in as Grafana fills them: `$job` and `$org`
from their `label_values` queries (All selected where the variable allows it),
`$__interval` from the time range and the data source's scrape interval, and
`$__rate_interval` as max($__interval + scrape interval, 4 × scrape interval)
(https://grafana.com/docs/grafana/latest/datasources/prometheus/template-variables/).
"""

from __future__ import annotations

import math
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from ilyd.control.client import ControlClient
from ilyd.devorg import DevOrg
from ilyd.errors import IlydError
from tests.helpers.devorg_process import devorg_fixture
from tests.helpers.waiting import wait_until
from tests.pipeline.conftest import Daemon, SalesforceUser, write_config

from .conftest import (
    ALERTS,
    DASHBOARDS,
    alert_rules,
    data_panels,
    load_dashboard,
    prometheus_tool,
)

SCRAPE_SECONDS = 1
# Waits on Prometheus poll a second-resolution server five times a second, for a minute.
POLL, PROMETHEUS_WAIT = 0.2, 60.0
JOB = "ilyd"  # the alert rules select job="ilyd"
ILY = "Ily_Match_Status__c"

dev = devorg_fixture(scope="module", orgs=2)

# (orgs, [daemon] lines): the daemon as shipped ("auto" runs one org in one process), and
# the same over worker processes, whose series the front process merges.
SHAPES = {"one process": (1, ""), "two worker processes": (2, "processes = 2\n")}
# Records a Salesforce user creates in each org: matched, not found, free email.
TRAFFIC = (("Account", {"Name": "Acme", "Website": "https://www.acme.example"}),
           ("Account", {"Name": "Globex", "Website": "globex.test"}),
           ("Account", {"Name": "None", "Website": "no-such-company.example"}),
           ("Lead", {"LastName": "Free", "Company": "x", "Email": "jo@gmail.com"}),
           ("Lead", {"LastName": "Work", "Company": "x", "Email": "jo@acme.example"}))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Prometheus:
    """A running prometheus and its HTTP API."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def api(self, path: str, **params: Any) -> Any:
        """The `data` of an API answer; the error text when Prometheus reports one."""
        response = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=30)
        body = response.json()
        if body.get("status") != "success":
            raise QueryError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def instant(self, query: str) -> list[dict[str, Any]]:
        return list(self.api("query", query=query)["result"])

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False


class QueryError(Exception):
    """Prometheus refused a query."""


@dataclass
class Live:
    prometheus: Prometheus
    started: float  # Unix time Prometheus started scraping


def start_prometheus(directory: Path, target: str) -> Prometheus:
    config = directory / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": f"{SCRAPE_SECONDS}s",
                   "evaluation_interval": f"{SCRAPE_SECONDS}s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [target]}]}],
    }))
    port = free_port()
    log = directory / "prometheus.log"
    process = subprocess.Popen(
        [prometheus_tool("prometheus"), f"--config.file={config}",
         f"--storage.tsdb.path={directory / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log.open("ab"), stderr=subprocess.STDOUT)
    prometheus = Prometheus(f"http://127.0.0.1:{port}", process, log)

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited: {log.read_text()[-2000:]}")
        return prometheus.ready()

    wait_until(ready, what="prometheus ready", timeout=PROMETHEUS_WAIT, interval=POLL)
    return prometheus


@pytest.fixture(scope="module", params=list(SHAPES))
def live(request: pytest.FixtureRequest, dev: DevOrg,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A daemon with the bundled dataset and its orgs provisioned by itself, scraped every
    second, after real traffic in each of its orgs."""
    orgs, daemon_lines = SHAPES[request.param]
    directory = tmp_path_factory.mktemp("live")
    infos = list(dev.orgs[:orgs])
    config = write_config(directory, dev, infos, daemon=daemon_lines)
    daemon = Daemon(config)
    daemon.start()
    prometheus = None
    try:
        # The control socket answers first; the metrics endpoint is up a moment later.
        metrics_url = wait_until(lambda: (_status(daemon) or {}).get("metrics_url"),
                                 what="the daemon's metrics endpoint",
                                 timeout=PROMETHEUS_WAIT, interval=POLL)
        wait_until(lambda: _status(daemon)["orgs"].get("running") == orgs,
                   what="the orgs running", timeout=PROMETHEUS_WAIT, interval=POLL)
        target = metrics_url.removeprefix("http://").split("/", 1)[0]
        started = time.time()
        prometheus = start_prometheus(directory, target)
        wait_until(lambda: prometheus.instant(f'up{{job="{JOB}"}} == 1'),
                   what="a first scrape", timeout=PROMETHEUS_WAIT, interval=POLL)
        # Every org has events, so each one's panels have their first event's series
        # (the time since the last event only exists from the first one on).
        records = [(user, user.create(sobject, **values))
                   for user in (SalesforceUser(dev, info) for info in infos)
                   for sobject, values in TRAFFIC]
        wait_until(lambda: all(user.record(r)[ILY] for user, r in records),
                   what="every record enriched", timeout=PROMETHEUS_WAIT, interval=POLL)
        # Prometheus has scraped the enriched records, and a few scrapes after them, so
        # each rate window over the traffic holds samples from before and after it.
        wait_until(lambda: prometheus.instant(
            f'sum(ilyd_records_enriched_total{{job="{JOB}"}}) >= {len(records)}'),
            what="the enriched records scraped", timeout=PROMETHEUS_WAIT, interval=POLL)
        after = time.time()
        wait_until(lambda: prometheus.instant(
            f'timestamp(up{{job="{JOB}"}}) > {after + 4 * SCRAPE_SECONDS}'),
            what="four more scrapes", timeout=PROMETHEUS_WAIT, interval=POLL)
        yield Live(prometheus, started)
    finally:
        daemon.stop()
        if prometheus is not None:
            prometheus.process.terminate()
            prometheus.process.wait(timeout=30)


def _status(daemon: Daemon) -> dict[str, Any] | None:
    """`ilyd ctl status`, or None while the daemon is not answering yet."""
    assert daemon.process is not None
    if daemon.process.poll() is not None:
        log = (daemon.config.parent / "daemon.log").read_text()[-3000:]
        pytest.fail(f"the daemon exited ({daemon.process.returncode}): {log}")
    try:
        return dict(ControlClient(daemon.socket, timeout=10).call("status"))
    except IlydError:  # not listening yet, or busy starting
        return None


# ------------------------------------------------------------------ Grafana's variables

def _regex_value(values: list[str]) -> str:
    """A multi-value variable as Grafana writes it for a Prometheus regex matcher."""
    escaped = [re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\\\1", v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def _variables(prometheus: Prometheus, dashboard: dict[str, Any], start: float,
               end: float) -> dict[str, str]:
    interval = SCRAPE_SECONDS  # the range over ~1,000 points is below the scrape interval
    values = {
        "__interval": f"{interval}s",
        "__interval_ms": str(interval * 1000),
        "__rate_interval": f"{max(interval + SCRAPE_SECONDS, 4 * SCRAPE_SECONDS)}s",
        "__range": f"{math.ceil(end - start)}s",
        "__range_s": str(math.ceil(end - start)),
        "__range_ms": str(math.ceil(end - start) * 1000),
    }
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        query = query.get("query", "") if isinstance(query, dict) else str(query)
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
        assert match, f"variable ${variable['name']}: not a label_values query: {query}"
        selector, label = match.groups()
        found = sorted(prometheus.api(f"label/{label}/values", **{"match[]": selector}))
        assert found, f"variable ${variable['name']} has no value ({query})"
        chosen = found if variable.get("includeAll") else found[:1]
        values[variable["name"]] = _regex_value(chosen)
    return values


def _fill(expr: str, values: dict[str, str]) -> str:
    names = "|".join(sorted(map(re.escape, values), key=len, reverse=True))
    filled = re.sub(r"\$\{(" + names + r")\}|\$(" + names + r")\b",
                    lambda m: values[m.group(1) or m.group(2)], expr)
    assert "$" not in filled, f"a variable is left unfilled: {filled}"
    return filled


# A target ending in a comparison filter (`… == 1`) selects only the series in trouble:
# empty on a healthy daemon by design, as long as its panel has another target with data.
_FILTER = re.compile(r"(?:==|!=|>=|<=|>|<)\s*-?[\d.]+\s*$")


def _finite(result: list[dict[str, Any]]) -> bool:
    points = [s["value"] for s in result if "value" in s]
    points += [p for s in result for p in s.get("values", [])]
    return any(math.isfinite(float(value)) for _, value in points)


def test_a_healthy_default_daemon_shows_data_in_every_panel_and_fires_no_alert(
        live: Live) -> None:
    problems = _panel_problems(live) + _rule_problems(live) + _alert_problems(live)
    assert not problems, "\n".join(problems)


def _panel_problems(live: Live) -> list[str]:
    """Query errors, panels without a finite value, and targets without a series."""
    end = time.time()
    start = live.started
    problems = []
    for path in DASHBOARDS:
        dashboard = load_dashboard(path)
        values = _variables(live.prometheus, dashboard, start, end)
        for panel in data_panels(dashboard):
            where = f"{path.name}: panel {panel.get('title')!r}"
            shown = False
            for target in panel.get("targets", []):
                expr = _fill(target["expr"], values)
                try:
                    if target.get("instant"):
                        data = live.prometheus.api("query", query=expr, time=end)
                    else:
                        data = live.prometheus.api("query_range", query=expr, start=start,
                                                   end=end, step=SCRAPE_SECONDS)
                except QueryError as exc:
                    problems.append(f"{where} {target['refId']}: query error {exc}: {expr}")
                    continue
                result = data["result"]
                if not result and not _FILTER.search(target["expr"]):
                    problems.append(f"{where} {target['refId']}: no series: {expr}")
                shown = shown or _finite(result)
            if not shown:
                problems.append(f"{where}: no data")
    return problems


def _rules(prometheus: Prometheus) -> list[dict[str, Any]]:
    groups = prometheus.api("rules")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _rule_problems(live: Live) -> list[str]:
    """Rules of the file Prometheus did not load, or whose evaluation failed."""
    expected = {rule["alert"] for rule in alert_rules()}
    evaluated = wait_until(
        lambda: (rules := _rules(live.prometheus))
        and all(r["health"] != "unknown" for r in rules) and rules,
        what="every rule evaluated once", timeout=PROMETHEUS_WAIT, interval=POLL)
    loaded = {r["name"] for r in evaluated if r["type"] == "alerting"}
    problems = [f"rule {name}: not loaded" for name in sorted(expected - loaded)]
    problems += [f"rule {r['name']}: {r['health']} {r.get('lastError', '')}"
                 for r in evaluated if r["health"] != "ok"]
    return problems


def _alert_problems(live: Live) -> list[str]:
    """Alerts pending or firing once every rule was evaluated after the traffic."""
    now = time.time()
    wait_until(lambda: all(_evaluated_after(r, now) for r in _rules(live.prometheus)),
               what="an evaluation of every rule after the traffic",
               timeout=PROMETHEUS_WAIT, interval=POLL)
    return [f"alert {a['labels'].get('alertname')} {a['state']}: {a['labels']}"
            for a in live.prometheus.api("alerts")["alerts"]]


def _evaluated_after(rule: dict[str, Any], moment: float) -> bool:
    stamp = rule.get("lastEvaluation", "")
    if not stamp or stamp.startswith("0001"):
        return False
    # RFC 3339 in UTC with nanoseconds: whole seconds are enough here.
    evaluated = datetime.fromisoformat(stamp[:19] + "+00:00").timestamp()
    return evaluated >= math.floor(moment)
