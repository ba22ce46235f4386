"""Group commit: requests that queue while a write runs share the next write; each
caller returns once its own request is written and raises only its own error."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from ilyd.store import Database
from ilyd.store.group_commit import GroupCommit
from ilyd.store.inbox import Inbox, InboxEntry
from tests.helpers.waiting import wait_until


class Log:
    """A write function that keeps the groups it committed; a group with "bad" in it
    fails as a whole, like a transaction; the first write can be held."""

    def __init__(self) -> None:
        self.committed: list[list[str]] = []
        self.hold = threading.Event()
        self.held = threading.Event()

    def __call__(self, requests: Sequence[str]) -> None:
        if not self.committed and not self.held.is_set():
            self.held.set()
            assert self.hold.wait(10)
        if "bad" in requests:
            raise ValueError("bad request")
        self.committed.append(list(requests))


def submit_all(
    gc: GroupCommit[str], requests: list[str]
) -> tuple[dict[str, BaseException | None], list[threading.Thread]]:
    """Submit each request from its own thread; returns once all of them queue."""
    outcome: dict[str, BaseException | None] = {}

    def run(request: str) -> None:
        try:
            gc.submit(request)
            outcome[request] = None
        except ValueError as exc:
            outcome[request] = exc

    threads = [threading.Thread(target=run, args=(r,)) for r in requests]
    for t in threads:
        t.start()
    wait_until(lambda: gc.waiting == len(requests), what="every request queued")
    return outcome, threads


def behind_a_held_write(log: Log, requests: list[str]) -> tuple[
        GroupCommit[str], dict[str, BaseException | None]]:
    """Submit "a" and hold its write; queue `requests` behind it; release; wait for all."""
    gc: GroupCommit[str] = GroupCommit(log)
    first = threading.Thread(target=gc.submit, args=("a",))
    first.start()
    assert log.held.wait(10)
    outcome, threads = submit_all(gc, requests)
    log.hold.set()
    for t in [first, *threads]:
        t.join(10)
    return gc, outcome


def test_requests_queued_behind_a_write_are_written_together_next() -> None:
    log = Log()
    gc, outcome = behind_a_held_write(log, ["b", "c", "d"])
    assert outcome == {"b": None, "c": None, "d": None}
    assert log.committed[0] == ["a"]
    assert sorted(log.committed[1]) == ["b", "c", "d"]
    assert (gc.groups, gc.requests) == (2, 4)


def test_a_bad_request_in_a_shared_write_fails_only_its_caller() -> None:
    log = Log()
    _, outcome = behind_a_held_write(log, ["b", "bad", "d"])
    assert outcome["b"] is None
    assert outcome["d"] is None
    assert isinstance(outcome["bad"], ValueError)
    assert sorted(r for group in log.committed for r in group) == ["a", "b", "d"]


def test_a_lone_request_is_written_at_once_and_raises_its_error() -> None:
    log = Log()
    log.held.set()  # nothing held
    gc: GroupCommit[str] = GroupCommit(log)
    gc.submit("a")
    with pytest.raises(ValueError, match="bad request"):
        gc.submit("bad")
    assert log.committed == [["a"]]


def test_concurrent_puts_of_many_orgs_inboxes_share_transactions_and_all_land(
    db: Database,
) -> None:
    at = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    orgs = [f"org{k}" for k in range(6)]
    inboxes = {org: Inbox(db) for org in orgs}  # one per org, as each org's pipeline has
    inbox = inboxes[orgs[0]]

    def put(org: str) -> None:
        inboxes[org].put(org, [InboxEntry("Lead", "00QA", {"Email": f"a@{org}.com"}, modstamp=at),
                        InboxEntry("Lead", f"00Q{org}", {})],
                  channel="/topic/IlyLeads", replay_id=len(org) * 10, replay_time=at)

    threads = [threading.Thread(target=put, args=(org,)) for org in orgs]
    with db.transaction():  # holds the write lock: the puts queue up behind it
        for t in threads:
            t.start()
        # (the group's queue is private; reading it is how the test knows all wait)
        wait_until(lambda: inbox._group.waiting == len(orgs) - 1, what="the puts queued")
    for t in threads:
        t.join(10)
    assert inbox._group.groups == 2
    for org in orgs:
        assert {i.record_id: dict(i.fields) for i in inbox.pending(org)} == {
            "00QA": {"Email": f"a@{org}.com"}, f"00Q{org}": {}}
        assert inbox.replay.get(org, "/topic/IlyLeads") == len(org) * 10
        assert inbox.replay.checkpoint(org, "Lead") == at
