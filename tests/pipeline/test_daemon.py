"""The whole pipeline in a running daemon (`ilyd run` as a child process) against devorg."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ilyd.devorg import DevOrg, OrgInfo
from tests.pipeline.conftest import Daemon, SalesforceUser, wait_until

ILY = "Ily_Match_Status__c"


@pytest.fixture
def daemon(provisioned: object, config_path: Path) -> Iterator[Daemon]:
    running = Daemon(config_path)
    running.start()
    yield running
    running.stop()


def enriched(user: SalesforceUser, records: list[str]) -> bool:
    return all(user.record(r)[ILY] for r in records)


def ilyd_writes(user: SalesforceUser, info: OrgInfo, record: str) -> int:
    return sum(1 for h in user.history(record) if h["user_id"] == info.user_id)


def quiet_calls(user: SalesforceUser, settle: float = 1.5) -> int:
    """The org's call count once it stopped moving for `settle` seconds."""
    last = {"calls": user.calls(), "since": time.monotonic()}

    def still() -> tuple[int] | None:
        now = user.calls()
        if now != last["calls"]:
            last.update(calls=now, since=time.monotonic())
            return None
        return (now,) if time.monotonic() - last["since"] >= settle else None

    (calls,) = wait_until(still, timeout=30, what="API calls to stop growing", interval=0.25)
    return int(calls)


def test_created_records_are_enriched_once_and_calls_stop_with_the_traffic(
        daemon: Daemon, user: SalesforceUser, info: OrgInfo) -> None:
    time.sleep(0)  # the daemon subscribes on its own; creations below may race it
    records = [user.create("Lead", LastName="L", Company="x", Email="jo@acme.example"),
               user.create("Account", Name="G", Website="https://globex.test"),
               user.create("Lead", LastName="F", Company="x", Email="me@gmail.com"),
               user.create("Account", Name="J", Website="n/a")]
    wait_until(lambda: enriched(user, records), timeout=30, what="every record enriched")
    statuses = [user.record(r)[ILY] for r in records]
    assert statuses == ["Matched", "Matched", "Free Email", "Invalid Domain"]
    calls = quiet_calls(user)
    assert all(ilyd_writes(user, info, r) == 1 for r in records)
    # ilyd's own writes raised nothing that made it write or call again.
    assert quiet_calls(user) == calls


def test_a_website_edit_re_enriches_and_a_phone_edit_writes_nothing(
        daemon: Daemon, user: SalesforceUser, info: OrgInfo) -> None:
    account = user.create("Account", Name="A", Website="acme.example")
    wait_until(lambda: enriched(user, [account]), timeout=30, what="first enrichment")
    user.update("Account", account, Phone="+1 555 0100")
    user.update("Account", account, Website="https://globex.test")
    wait_until(lambda: user.record(account)["Ily_Company_Name__c"] == "Globex Corporation",
               timeout=30, what="re-enrichment after the Website edit")
    quiet_calls(user)
    assert ilyd_writes(user, info, account) == 2
    user.update("Account", account, Phone="+1 555 0199")
    quiet_calls(user)
    assert ilyd_writes(user, info, account) == 2


@pytest.mark.slow
def test_sigkill_mid_burst_then_restart_leaves_every_record_enriched(
        daemon: Daemon, user: SalesforceUser) -> None:
    first = user.create("Account", Name="warm-up", Website="acme.example")
    wait_until(lambda: enriched(user, [first]), timeout=30, what="daemon running")
    records = [user.create("Account", Name=f"A{i}", Website="globex.test") for i in range(40)]
    daemon.kill()
    records += [user.create("Lead", LastName=f"L{i}", Company="x", Email=f"p{i}@acme.example")
                for i in range(20)]  # created while the daemon is down
    daemon.start()
    wait_until(lambda: enriched(user, records), timeout=60, what="every record enriched")


@pytest.mark.slow
def test_polling_mode_enriches_the_same_records_as_streaming(
        dev: DevOrg, user: SalesforceUser, provisioned: object, config_path: Path) -> None:
    user.settings(streaming_enabled=False)
    running = Daemon(config_path)
    running.start()
    try:
        time.sleep(0)
        wait_until(lambda: (config_path.parent / "daemon.log").read_text().count(
            "polling_for_changes"), timeout=30, what="the poller to start polling")
        records = [user.create("Lead", LastName="L", Company="x", Email="jo@acme.example"),
                   user.create("Account", Name="G", Website="https://globex.test"),
                   user.create("Lead", LastName="F", Company="x", Email="me@gmail.com"),
                   user.create("Account", Name="J", Website="n/a")]
        wait_until(lambda: enriched(user, records), timeout=40, what="polled records enriched")
        statuses = [user.record(r)[ILY] for r in records]
        assert statuses == ["Matched", "Matched", "Free Email", "Invalid Domain"]
    finally:
        running.stop()
