"""The process's lookup pool: every org's lookups on one set of threads, each org at most
its `workers` in flight, so an org whose source hangs cannot starve the others; shut down
once, it runs nothing that still waits and holds up nobody."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import pytest

from ilyd.enrich.provider import Lookup, lookup_each
from ilyd.errors import ProviderError
from ilyd.pipeline.enricher import Enricher
from ilyd.pipeline.lookups import LookupLane, LookupPool, LookupsClosedError
from ilyd.pipeline.work import WorkItem
from ilyd.store import Database
from ilyd.store.inbox import Inbox, InboxEntry
from tests.helpers.waiting import wait_until

ORG = "acme"


class _Gate:
    """Lookups that wait until the gate opens, counting those in flight."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.in_flight = 0
        self.most = 0
        self.calls = 0
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def lookup(self, item: str) -> str:
        with self._lock:
            self.in_flight += 1
            self.calls += 1
            self.most = max(self.most, self.in_flight)
            self.threads.add(threading.current_thread().name)
        try:
            assert self.open.wait(timeout=60), "the test never opened the gate"
            return item.upper()
        finally:
            with self._lock:
                self.in_flight -= 1


class _Mapping:
    """`lane.submit(fn, items, ...)`: its results, or what it raised, once done (which
    the submitting thread never waits for)."""

    def __init__(self, lane: LookupLane, fn: Callable[[str], str], items: Sequence[str]) -> None:
        self.result: list[str] | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.calls = 0
        lane.submit(fn, items, self._done)

    def _done(self, outcome: list[str] | BaseException) -> None:
        self.calls += 1
        if isinstance(outcome, BaseException):
            self.error = outcome
        else:
            self.result = outcome
        self.done.set()


@pytest.fixture
def pool() -> Iterator[LookupPool]:
    lookups = LookupPool(4)
    yield lookups
    lookups.shutdown()


def test_an_org_whose_source_hangs_holds_only_its_workers_and_another_orgs_lookups_complete(
        pool: LookupPool) -> None:
    hanging = _Gate()
    busy = _Mapping(pool.lane(2), hanging.lookup, [f"slow{i}" for i in range(20)])
    wait_until(lambda: hanging.in_flight == 2, what="the busy org's two lookups in flight")

    other = _Mapping(pool.lane(2), str.upper, [f"quick{i}" for i in range(20)])

    wait_until(other.done.is_set, what="the other org's lookups done")
    assert other.error is None
    assert other.result == [f"QUICK{i}" for i in range(20)]
    assert not busy.done.is_set()
    assert hanging.most == 2
    hanging.open.set()
    wait_until(busy.done.is_set, what="the busy org's lookups done")
    assert busy.result == [f"SLOW{i}" for i in range(20)]
    assert hanging.most == 2


def test_the_orgs_share_the_pools_threads_however_many_ask(pool: LookupPool) -> None:
    gate = _Gate()
    orgs = [_Mapping(pool.lane(4), gate.lookup, [f"org{n}-{i}" for i in range(10)])
            for n in range(5)]
    wait_until(lambda: gate.in_flight == 4, what="every thread of the pool busy")
    gate.open.set()
    wait_until(lambda: all(org.done.is_set() for org in orgs), what="every org's lookups done")
    assert [org.result for org in orgs] == [[f"ORG{n}-{i}" for i in range(10)]
                                           for n in range(5)]
    assert gate.most == 4
    assert pool.started() == 4
    assert len(gate.threads) == 4


def test_batches_handed_to_one_lane_share_its_cap(pool: LookupPool) -> None:
    gate = _Gate()
    lane = pool.lane(2)
    batches = [_Mapping(lane, gate.lookup, [f"b{n}-{i}" for i in range(3)]) for n in range(3)]
    wait_until(lambda: gate.in_flight == 2, what="the lane's two lookups in flight")
    assert not any(batch.done.is_set() for batch in batches)
    gate.open.set()
    wait_until(lambda: all(batch.done.is_set() for batch in batches),
               what="every batch done")
    assert [batch.result for batch in batches] == [[f"B{n}-{i}" for i in range(3)]
                                                   for n in range(3)]
    assert gate.most == 2


def test_an_org_never_takes_every_thread_of_the_pool(pool: LookupPool) -> None:
    assert pool.lane(64).limit == 3
    assert pool.lane(2).limit == 2
    assert LookupPool(1).lane(4).limit == 1


def test_a_lookup_that_raises_is_raised_to_the_org_that_asked(pool: LookupPool) -> None:
    def lookup(item: str) -> str:
        if item == "bad":
            raise ValueError("a provider's bug")
        return item

    failed = _Mapping(pool.lane(2), lookup, ["a", "bad", "c"])
    wait_until(failed.done.is_set, what="the failed batch done")
    assert isinstance(failed.error, ValueError)
    assert str(failed.error) == "a provider's bug"
    fine = _Mapping(pool.lane(2), lookup, ["a", "b"])
    wait_until(fine.done.is_set, what="the other batch done")
    assert fine.result == ["a", "b"]
    assert (failed.calls, fine.calls) == (1, 1)


def test_a_shut_down_pool_runs_no_waiting_lookup_and_waits_for_none_in_flight() -> None:
    gate = _Gate()
    # A lane of 3 on a one-thread pool: one lookup runs, two wait in the pool's queue.
    small = LookupPool(1)
    waiting = _Mapping(LookupLane(small, 3), gate.lookup, ["a", "b", "c"])
    wait_until(lambda: gate.in_flight == 1, what="one lookup in flight")

    small.shutdown()

    wait_until(waiting.done.is_set, what="the org told its lookups will not run")
    assert isinstance(waiting.error, LookupsClosedError)
    assert gate.in_flight == 1  # still in flight: nobody waited for it
    late = _Mapping(small.lane(1), str.upper, ["late"])
    assert isinstance(late.error, LookupsClosedError)  # told at once, on the asking thread
    gate.open.set()
    wait_until(lambda: gate.in_flight == 0, what="the lookup in flight ended")
    assert len(gate.threads) == 1


class _SlowCompanies:
    """A real provider whose first lookup takes a while (so the round's rest goes to the
    pool) and whose later ones wait for the gate."""

    name = "companies"

    def __init__(self, gate: _Gate) -> None:
        self.gate = gate
        self.first = True

    def lookup(self, domain: str) -> Lookup:
        if self.first:
            self.first = False
            time.sleep(0.1)  # a source across the network
        else:
            self.gate.lookup(domain)
        return Lookup(provider=self.name, domain=domain, found=True,
                      values={"Ily_Company_Name__c": domain.split(".", maxsplit=1)[0]})

    def lookup_many(self, domains: Iterable[str]) -> Mapping[str, Lookup | ProviderError]:
        return lookup_each(self.lookup, domains)

    def close(self) -> None:
        return None


def test_a_round_whose_lookups_the_stopping_process_drops_leaves_its_rows_in_the_inbox(
        tmp_path: Any) -> None:
    database = Database(tmp_path / "state.db")
    inbox = Inbox(database)
    inbox.put(ORG, [InboxEntry("Account", f"001{i}", {"Website": f"https://c{i}.example"})
                    for i in range(5)])
    gate = _Gate()
    pool = LookupPool(2)  # one thread for the org's lane, one kept for the others
    handed: list[WorkItem] = []
    enricher = Enricher(ORG, inbox, _SlowCompanies(gate), handed.extend, workers=4,
                        lookups=pool)
    report: list[Any] = []
    rounds = threading.Thread(target=lambda: report.append(enricher.run_round()), daemon=True)
    rounds.start()
    wait_until(lambda: gate.in_flight == 1, what="the round's lookups on the pool")

    pool.shutdown()
    gate.open.set()  # the lookup in flight ends; the round asks for no other

    wait_until(lambda: report, what="the round given up")
    assert gate.calls == 1
    assert report[0].claimed == 5
    assert report[0].handed_on == 0
    assert handed == []
    assert inbox.depth(ORG) == 5
    enricher.close()
    database.close()
