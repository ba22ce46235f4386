"""The subscriber part in a real org actor against devorg: it publishes connected,
reconnecting (with its reason) after devorg forgets the client, backoff on 503s, and
writes events into the inbox together with the channel's replay id; a replay id that
expired during an outage is caught up through the actor's own catch-up message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pykka
import pytest
import requests
from structlog.testing import capture_logs

from ilyd.actors.messages import OrgReport, OrgStarted
from ilyd.actors.org import OrgActor
from ilyd.actors.pipeline import pipeline_children
from ilyd.config import OrgConfig, load_config
from ilyd.devorg import DevOrg, OrgInfo
from ilyd.provision.spec import PUSH_TOPICS
from ilyd.store import Database
from ilyd.store.inbox import Inbox
from tests.helpers.devorg_process import devorg_fixture
from tests.helpers.orgs import password_org_toml, provision
from tests.helpers.store import database_fixture
from tests.helpers.streaming import hold_connects
from tests.helpers.waiting import wait_until

CHANNEL = PUSH_TOPICS["Lead"].channel


class _Supervisor(pykka.ThreadingActor):
    """Stands in for the supervisor: keeps every report the org sends, in order."""

    def __init__(self, reports: list[Any]) -> None:
        super().__init__()
        self.reports = reports

    def on_receive(self, message: Any) -> None:
        self.reports.append(message)


def _feeding_org(config: OrgConfig, supervisor: pykka.ActorRef[Any],
                 database: Database) -> pykka.ActorRef[Any]:
    """The real OrgActor with the real feed part (the subscriber here), wired by
    `pipeline_children` as in the daemon, but without the enricher and writer: they would
    empty the inbox this test reads."""
    feeders = [(n, f) for n, f in pipeline_children(config) if n == "feed"]
    return OrgActor.start(config, 1, supervisor, database, factories=feeders)


dev = devorg_fixture()


@pytest.fixture
def info(dev: DevOrg) -> OrgInfo:
    return hold_connects(dev, dev.orgs[0])


@pytest.fixture
def config(tmp_path: Path, dev: DevOrg, info: OrgInfo) -> OrgConfig:
    """A password-auth org config pointing at devorg, with ilyd provisioned in the org."""
    path = tmp_path / "ilyd.toml"
    path.write_text(f'[daemon]\nstate_dir = "{tmp_path}/state"\n'
                    + password_org_toml(tmp_path, dev, info))
    loaded = load_config(path)
    assert not loaded.org_errors, loaded.org_errors
    return provision(loaded.orgs[0])


database = database_fixture()


class Tree:
    """A running org tree and what its supervisor heard."""

    def __init__(self, dev: DevOrg, info: OrgInfo, config: OrgConfig, db: Database) -> None:
        self.dev = dev
        self.info = info
        self.reports: list[Any] = []
        self.supervisor = _Supervisor.start(self.reports)
        self.org = _feeding_org(config, self.supervisor, db)
        self.inbox = Inbox(db)

    def connections(self, since: int = 0) -> list[tuple[str | None, str | None, Any]]:
        """(connection, reason, retry_in) of each connection report after `since` reports."""
        out = []
        for report in list(self.reports)[since:]:
            if isinstance(report, OrgReport):
                detail = dict(report.detail)
                if "connection" in detail:
                    out.append((detail["connection"], detail.get("connection_reason"),
                                detail.get("retry_in")))
        return out

    def connected(self, since: int = 0) -> bool:
        return any(state == "connected" for state, _, _ in self.connections(since))

    def admin(self, action: str, body: dict[str, Any] | None = None) -> Any:
        response = requests.post(f"{self.dev.admin}/streaming/{self.info.name}/{action}",
                                 json=body or {}, timeout=10)
        response.raise_for_status()
        return response.json()

    def lead(self, n: int) -> str:
        response = requests.post(f"{self.dev.admin}/orgs/{self.info.name}/records/Lead",
                                 json={"LastName": f"A{n}", "Company": f"Co{n}",
                                       "Email": f"a{n}@example.com"}, timeout=10)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def pending(self) -> set[str]:
        return {item.record_id for item in self.inbox.pending(self.info.name)}


@pytest.fixture
def tree(dev: DevOrg, info: OrgInfo, config: OrgConfig, database: Database) -> Tree:
    running = Tree(dev, info, config, database)
    wait_until(lambda: any(isinstance(r, OrgStarted) for r in running.reports),
               what="the org started")
    wait_until(running.connected, what="the subscriber to publish connected")
    return running


def test_the_subscriber_publishes_connected_and_stores_events_with_the_replay_id(
    tree: Tree
) -> None:
    streaming = [dict(r.detail).get("streaming") for r in tree.reports
                 if isinstance(r, OrgReport)]
    assert True in streaming
    ids = {tree.lead(n) for n in range(3)}
    wait_until(lambda: tree.pending() == ids, what="three leads in the inbox")
    items = tree.inbox.pending(tree.info.name)
    assert {(i.sobject, i.change_type, i.source) for i in items} == {
        ("Lead", "created", CHANNEL)}
    last = requests.get(f"{tree.dev.admin}/streaming/{tree.info.name}", timeout=10).json()
    expected = last["channels"][CHANNEL]["last_replay_id"]
    wait_until(lambda: tree.inbox.replay.get(tree.info.name, CHANNEL) == expected,
               what="the last event's replay id stored")
    assert tree.inbox.replay.event_time(tree.info.name, CHANNEL) is not None


def test_a_forgotten_client_is_published_as_reconnecting_with_its_reason(tree: Tree) -> None:
    mark = len(tree.reports)
    assert tree.admin("forget")["forgotten"] >= 1
    wait_until(lambda: tree.connected(mark), what="connected again after the forget")
    states = tree.connections(mark)
    assert states[0][:2] == ("reconnecting", "unknown_client")
    lead = tree.lead(1)
    wait_until(lambda: lead in tree.pending(), what="an event after the re-handshake")


def test_503s_are_published_as_backoff_with_the_wait_then_connected(tree: Tree) -> None:
    response = requests.post(f"{tree.dev.admin}/faults", json={
        "kind": "status", "status": 503, "path_prefix": "/cometd/", "count": 2}, timeout=10)
    response.raise_for_status()
    mark = len(tree.reports)
    try:
        wait_until(lambda: len([s for s in tree.connections(mark) if s[0] == "backoff"]) >= 2,
                   what="two backoff reports")
        wait_until(lambda: tree.connected(mark), what="connected again after the 503s")
    finally:
        requests.delete(f"{tree.dev.admin}/faults", timeout=10)
    backoffs = [s for s in tree.connections(mark) if s[0] == "backoff"]
    assert all(reason == "server" and retry_in for _, reason, retry_in in backoffs)
    # exponential: the second wait's range (1-2 s) starts where the first's (0.5-1 s) ends
    assert backoffs[1][2] >= backoffs[0][2]
    lead = tree.lead(2)
    wait_until(lambda: lead in tree.pending(), what="events flowing after the backoff")


def test_an_expired_replay_id_is_caught_up_through_the_actors_catch_up_message(
    dev: DevOrg, info: OrgInfo, config: OrgConfig, database: Database
) -> None:
    first = Tree(dev, info, config, database)
    wait_until(first.connected, what="the first tree connected")
    seen = first.lead(0)
    wait_until(lambda: seen in first.pending(), what="the first lead")
    stored_time = first.inbox.replay.event_time(info.name, CHANNEL)
    assert stored_time is not None
    first.org.stop(block=True, timeout=10)
    missed = {first.lead(n) for n in range(1, 5)}
    first.admin("expire-events")

    with capture_logs() as logs:
        second = Tree(dev, info, config, database)
        wait_until(lambda: missed <= second.pending(), what="every lead of the outage in the inbox")
    assert ("reconnecting", "replay_invalid") in [s[:2] for s in second.connections()]
    window = [e for e in logs if e.get("event") == "replay_gap_catch_up"]
    assert [e["since"] for e in window] == [stored_time.isoformat()]


def test_an_org_unreachable_at_start_is_retried_until_streaming_connects(
    dev: DevOrg, info: OrgInfo, config: OrgConfig, database: Database
) -> None:
    response = requests.post(f"{dev.admin}/faults", json={
        "kind": "status", "status": 403, "error_code": "REQUEST_LIMIT_EXCEEDED",
        "message": "TotalRequests Limit exceeded.", "path_prefix": "/services/data/"},
        timeout=10)
    response.raise_for_status()
    tree = Tree(dev, info, config, database)
    try:
        wait_until(lambda: [s for s in tree.connections() if s[0] == "backoff" and s[2]],
                   what="a backoff report with the next attempt's wait")
        assert not tree.connected()
    finally:
        requests.delete(f"{dev.admin}/faults", timeout=10).raise_for_status()
    wait_until(tree.connected, what="connected once Salesforce answers again")
    lead = tree.lead(7)
    wait_until(lambda: lead in tree.pending(), what="events flowing after the retried start")
