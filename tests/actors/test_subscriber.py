"""SubscriptionLoop against devorg: events land in the inbox with their replay ids, a
SIGKILLed subscriber restarts from its stored ids, and an expired replay id is closed by
the SOQL catch-up — from the earliest safe point even when no checkpoint exists yet."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from structlog.testing import capture_logs

from ilyd import metrics
from ilyd.actors.subscriber import SubscriptionLoop
from ilyd.devorg import DevOrg, OrgInfo
from ilyd.pipeline.poller import Poller
from ilyd.salesforce.auth import TokenProvider, make_token_provider
from ilyd.salesforce.rest import RestClient
from ilyd.store import Database
from ilyd.store.inbox import Inbox
from ilyd.store.writes import WriteStateStore
from tests.helpers import ROOT
from tests.helpers.devorg_process import devorg_fixture
from tests.helpers.store import database_fixture
from tests.helpers.streaming import FAST_BACKOFF, connected, hold_connects
from tests.helpers.waiting import wait_until

TOPIC = "/topic/IlyLeadChanges"


dev = devorg_fixture()


@pytest.fixture
def org(dev: DevOrg) -> OrgInfo:
    return hold_connects(dev, dev.orgs[0])


def provider(org: OrgInfo) -> TokenProvider:
    return make_token_provider("password", login_url=org.login_url, client_id=org.client_id,
                               client_secret=org.client_secret, username=org.username,
                               password=org.password, org=org.name)


@pytest.fixture
def rest(org: OrgInfo) -> Iterator[RestClient]:
    client = RestClient(org.name, provider(org))
    client.create("PushTopic", {"Name": "IlyLeadChanges", "ApiVersion": 62.0,
                                "NotifyForFields": "Referenced",
                                "Query": "SELECT Id, Email, Company, Website FROM Lead"})
    yield client
    client.close()


db = database_fixture()


def lead(rest: RestClient, n: int) -> str:
    return rest.create("Lead", {"LastName": f"S{n}", "Company": f"Co{n}",
                                "Email": f"s{n}@example.com"})


def make_loop(dev: DevOrg, org: OrgInfo, inbox: Inbox, **kwargs: object) -> SubscriptionLoop:
    tp = provider(org)
    return SubscriptionLoop(
        org.name, f"{dev.url}/cometd/62.0", {TOPIC: "Lead"}, inbox,
        access_token=lambda: tp.token().access_token,
        refresh_token=lambda: tp.refresh(tp.token()).access_token, backoff=FAST_BACKOFF,
        **kwargs,  # type: ignore[arg-type]
    )


def pending_ids(inbox: Inbox, org: OrgInfo) -> set[str]:
    return {item.record_id for item in inbox.pending(org.name)}


def test_events_land_in_the_inbox_with_the_channels_replay_id(
    dev: DevOrg, org: OrgInfo, rest: RestClient, db: Database
) -> None:
    inbox = Inbox(db)
    stored: list[int] = []
    with connected(make_loop(dev, org, inbox, on_stored=stored.append)):
        ids = {lead(rest, n) for n in range(3)}
        wait_until(lambda: pending_ids(inbox, org) == ids, what="three leads in the inbox")
        item = inbox.pending(org.name)[0]
        assert (item.sobject, item.change_type, item.source) == ("Lead", "created", TOPIC)
        assert item.fields["Email"].endswith("@example.com")
        wait_until(lambda: inbox.replay.get(org.name, TOPIC) is not None, what="a stored replay id")
        retained = requests.get(f"{dev.admin}/streaming/{org.name}", timeout=10).json()
        assert inbox.replay.get(org.name, TOPIC) == retained["channels"][TOPIC]["last_replay_id"]
        assert inbox.replay.checkpoint(org.name, "Lead") is not None
        assert sum(stored) == 3


_CHILD = """
import sys, time
import structlog
structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
from ilyd.actors.subscriber import SubscriptionLoop
from ilyd.salesforce.auth import make_token_provider
from ilyd.salesforce.bayeux import BackoffPolicy
from ilyd.store import Database
from ilyd.store.inbox import Inbox
url, db, org, login, cid, secret, user, pw = sys.argv[1:9]
tp = make_token_provider("password", login_url=login, client_id=cid, client_secret=secret,
                         username=user, password=pw, org=org)
inbox = Inbox(Database(db))
loop = SubscriptionLoop(org, url + "/cometd/62.0", {"/topic/IlyLeadChanges": "Lead"}, inbox,
                        access_token=lambda: tp.token().access_token,
                        on_stored=lambda n: print("stored", n, flush=True),
                        backoff=BackoffPolicy(base=0.05, cap=0.3, long=0.5))
loop.start()
while loop.client.state != "connected":
    time.sleep(0.02)
print("connected", flush=True)
time.sleep(600)
"""


def test_a_sigkilled_subscriber_restarts_from_its_stored_replay_id(
    dev: DevOrg, org: OrgInfo, rest: RestClient, tmp_path: Path
) -> None:
    path = tmp_path / "state.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, dev.url, str(path), org.name, org.login_url,
         org.client_id, org.client_secret, org.username, org.password],
        stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "connected"
        before = {lead(rest, n) for n in range(3)}
        stored = 0
        while stored < 3:
            stored += int(proc.stdout.readline().split()[1])
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    missed = {lead(rest, n) for n in range(3, 6)}

    db = Database(path)
    inbox = Inbox(db)
    assert pending_ids(inbox, org) == before
    loop = make_loop(dev, org, inbox)
    loop.start()
    try:
        wait_until(lambda: pending_ids(inbox, org) == before | missed, what="the missed leads")
        assert loop.gaps == []
    finally:
        loop.stop()
        db.close()


def test_an_expired_replay_id_is_closed_by_the_catch_up(
    dev: DevOrg, org: OrgInfo, rest: RestClient, db: Database
) -> None:
    inbox = Inbox(db)
    with connected(make_loop(dev, org, inbox)):
        seen = lead(rest, 1)
        wait_until(lambda: pending_ids(inbox, org) == {seen}, what="the first lead")
    missed = {lead(rest, n) for n in range(2, 5)}
    requests.post(f"{dev.admin}/streaming/{org.name}/expire-events", json={},
                  timeout=10).raise_for_status()

    before = metrics.REPLAY_FALLBACKS.labels(org=org.name)._value.get()
    poller = Poller(org.name, rest, inbox, WriteStateStore(db), ("Lead",))
    second = make_loop(dev, org, inbox, catch_up=poller.poll_object)
    second.start()
    try:
        wait_until(lambda: missed <= pending_ids(inbox, org), what="the missed leads via catch-up")
        assert [g.channel for g in second.gaps] == [TOPIC]
        assert metrics.REPLAY_FALLBACKS.labels(org=org.name)._value.get() == before + 1
        after = lead(rest, 9)
        wait_until(lambda: after in pending_ids(inbox, org), what="new events after the gap")
        assert json.dumps(second.gaps[0].detail).find("you provided was invalid") > 0
    finally:
        second.stop()


def expire(dev: DevOrg, org: OrgInfo) -> None:
    requests.post(f"{dev.admin}/streaming/{org.name}/expire-events", json={},
                  timeout=10).raise_for_status()


def hour_later_poller(rest: RestClient, inbox: Inbox, db: Database, org: OrgInfo) -> Poller:
    # The outage lasted an hour as far as the poller's own clock goes: its default first
    # look-back (a few seconds before "now") would find none of the records it missed.
    return Poller(org.name, rest, inbox, WriteStateStore(db), ("Lead",),
                  clock=lambda: datetime.now(UTC) + timedelta(hours=1))


def catch_up_after_outage(
    dev: DevOrg, org: OrgInfo, rest: RestClient, inbox: Inbox, db: Database, missed: set[str]
) -> tuple[SubscriptionLoop, list[dict[str, object]]]:
    """Run a loop whose catch-up polls an hour later until every `missed` record is in the
    inbox; return the stopped loop and its catch-up log entries."""
    loop = make_loop(dev, org, inbox, catch_up=hour_later_poller(rest, inbox, db, org).poll_object)
    with capture_logs() as logs:
        loop.start()
        try:
            wait_until(lambda: missed <= pending_ids(inbox, org), what="every record of the outage")
        finally:
            loop.stop()
    return loop, [e for e in logs if e.get("event") == "replay_gap_catch_up"]


def test_a_gap_before_any_checkpoint_is_caught_up_from_the_replay_ids_event_time(
    dev: DevOrg, org: OrgInfo, rest: RestClient, db: Database
) -> None:
    inbox = Inbox(db)
    doomed = lead(rest, 0)
    expire(dev, org)  # the first subscription (-2) finds nothing: no entry, no checkpoint
    with connected(make_loop(dev, org, inbox)):
        rest.delete("Lead", doomed)  # a deleted event: a replay id to store, nothing to enrich
        wait_until(lambda: inbox.replay.get(org.name, TOPIC) is not None, what="a stored replay id")
    assert inbox.replay.checkpoint(org.name, "Lead") is None
    stored_time = inbox.replay.event_time(org.name, TOPIC)
    assert stored_time is not None
    missed = {lead(rest, n) for n in range(1, 6)}
    expire(dev, org)

    second, window = catch_up_after_outage(dev, org, rest, inbox, db, missed)
    assert [g.channel for g in second.gaps] == [TOPIC]
    assert [(e["basis"], e["since"]) for e in window] == [
        ("replay_event", stored_time.isoformat())]


def test_without_an_event_time_the_gap_is_caught_up_from_the_first_subscription(
    dev: DevOrg, org: OrgInfo, rest: RestClient, db: Database
) -> None:
    inbox = Inbox(db)
    with connected(make_loop(dev, org, inbox)):
        pass  # the first subscription stores the channel's first-subscribed time
    origin = inbox.replay.first_subscribed(org.name, TOPIC)
    assert origin is not None
    missed = {lead(rest, n) for n in range(3)}
    # A replay id stored without its event's time (a state directory from before event
    # times were kept), and no checkpoint: only the first-subscribed time is left.
    last = requests.get(f"{dev.admin}/streaming/{org.name}", timeout=10).json()
    inbox.replay.set(org.name, TOPIC, last["channels"][TOPIC]["last_replay_id"])
    assert inbox.replay.checkpoint(org.name, "Lead") is None
    expire(dev, org)

    _, window = catch_up_after_outage(dev, org, rest, inbox, db, missed)
    assert inbox.replay.first_subscribed(org.name, TOPIC) == origin  # kept, not renewed
    assert [e["basis"] for e in window] == ["first_subscribed"]
    assert str(window[0]["since"]) < origin.isoformat()  # less the clock-skew margin


def test_each_stored_event_counts_its_age_from_the_change_in_salesforce(
    dev: DevOrg, org: OrgInfo, rest: RestClient, db: Database
) -> None:
    inbox = Inbox(db)

    def ages() -> float:
        return metrics.REGISTRY.get_sample_value("ilyd_event_age_seconds_count") or 0.0

    before = ages()
    with connected(make_loop(dev, org, inbox)):
        ids = {lead(rest, n) for n in range(2)}
        wait_until(lambda: pending_ids(inbox, org) >= ids, what="two leads in the inbox")
    assert ages() - before >= 2
    # devorg runs on this host's clock: no event is older than the test.
    assert (metrics.REGISTRY.get_sample_value("ilyd_event_age_seconds_bucket", {"le": "300.0"})
            or 0.0) == ages()
