"""The Enricher reads the inbox only when it must, and still forgets no row: rows it was
told about are claimed without a look, retries and expired leases come due when they
should, rows given back by someone else are found once it is told, deleted records are
confirmed, and a source in memory is asked inline while any other is asked on the pool,
a round waiting for none of its lookups."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence

from ilyd.enrich.provider import Lookup, lookup_each
from ilyd.errors import ProviderError
from ilyd.pipeline.enricher import Enricher, Looked
from ilyd.pipeline.work import WorkItem
from ilyd.store import Database
from ilyd.store.inbox import Inbox, InboxEntry
from tests.helpers.waiting import wait_until

ORG = "acme"


class _Companies:
    """A real provider over a fixed answer: every domain is a company (once `gate` is
    set, if given); while `busy` it fails retryably, asking for `retry_after` seconds."""

    name = "companies"

    def __init__(self, *, busy: bool = False,
                 retry_after: float | None = None,
                 gate: threading.Event | None = None) -> None:
        self.gate = gate
        self.busy = busy
        self.retry_after = retry_after
        self.threads: list[str] = []
        self._lock = threading.Lock()

    def lookup(self, domain: str) -> Lookup:
        with self._lock:
            self.threads.append(threading.current_thread().name)
        if self.gate is not None:
            assert self.gate.wait(60), "the test never opened the gate"
        if self.busy:
            raise ProviderError("too many requests", retryable=True, reason="rate_limited",
                                retry_after=self.retry_after)
        return Lookup(provider=self.name, domain=domain, found=True,
                      values={"Ily_Company_Name__c": domain.split(".", maxsplit=1)[0].title()})

    def lookup_many(self, domains: Iterable[str]) -> Mapping[str, Lookup | ProviderError]:
        return lookup_each(self.lookup, domains)

    def close(self) -> None:
        return None


class _Sink:
    """Where handed-on records land (the writer's place)."""

    def __init__(self) -> None:
        self.items: list[WorkItem] = []

    def __call__(self, items: Sequence[WorkItem]) -> None:
        self.items.extend(items)


def _enricher(inbox: Inbox, provider: _Companies, sink: _Sink) -> Iterator[Enricher]:
    enricher = Enricher(ORG, inbox, provider, sink, workers=2)
    yield enricher
    enricher.close()


def _put(inbox: Inbox, *ids: str, change_type: str = "updated") -> None:
    inbox.put(ORG, [InboxEntry("Account", i, {"Website": f"https://{i.lower()}.example"},
                               change_type=change_type) for i in ids])


def _statements(database: Database) -> list[str]:
    """The SQL this thread runs from now on."""
    seen: list[str] = []
    database.connection().set_trace_callback(seen.append)
    return seen


def _wait_until_due(enricher: Enricher) -> None:
    wait_until(lambda: enricher.next_due() == 0.0, timeout=10, what="the row to come due")


def test_rows_it_was_told_about_are_claimed_without_reading_the_inbox_first(
        database: Database) -> None:
    inbox, sink = Inbox(database), _Sink()
    for enricher in _enricher(inbox, _Companies(), sink):
        _put(inbox, "001A")
        assert enricher.next_due() == 0.0  # the first look reads
        enricher.run_round()
        _put(inbox, "001B", "001C")
        enricher.rows_stored()
        seen = _statements(database)
        assert enricher.next_due() == 0.0
        assert seen == []
        assert enricher.run_round().claimed == 2
        # One statement: the claim (a read of the claimable rows), no look before it.
        assert len([s for s in seen if "FROM inbox" in s]) == 1, seen
    assert [w.record_id for w in sink.items] == ["001A", "001B", "001C"]


def test_after_a_short_claim_nothing_is_claimable_until_told_or_due(
        database: Database) -> None:
    inbox, sink = Inbox(database), _Sink()
    for enricher in _enricher(inbox, _Companies(), sink):
        _put(inbox, "001A")
        assert enricher.next_due() == 0.0  # read: one row claimable, nothing else waits
        enricher.run_round()
        seen = _statements(database)
        due = enricher.next_due()
        # The row is leased to the writer: due when its lease ends, known without a read.
        assert due is not None
        assert 0 < due <= inbox.lease_seconds
        assert seen == []


def test_a_retry_put_back_with_a_delay_is_claimed_again_when_its_delay_ends(
        database: Database) -> None:
    inbox, sink, provider = Inbox(database), _Sink(), _Companies(busy=True, retry_after=0.3)
    for enricher in _enricher(inbox, provider, sink):
        _put(inbox, "001A")
        report = enricher.run_round()
        assert (report.claimed, report.retrying, sink.items) == (1, 1, [])
        due = enricher.next_due()
        assert due is not None
        assert 0 < due <= 0.3
        provider.busy = False
        _wait_until_due(enricher)
        assert enricher.run_round().handed_on == 1
    assert [w.record_id for w in sink.items] == ["001A"]
    assert inbox.pending(ORG)[0].attempts == 2


def test_rows_given_back_by_the_writer_are_found_once_it_says_rows_changed(
        database: Database) -> None:
    inbox, sink = Inbox(database), _Sink()
    for enricher in _enricher(inbox, _Companies(), sink):
        _put(inbox, "001A")
        enricher.run_round()
        # The writer could not write it: back in the inbox for a retry in 0.2 s.
        inbox.release([sink.items[0].item], delay=0.2, error="UNABLE_TO_LOCK_ROW")
        enricher.rows_changed()
        due = enricher.next_due()
        assert due is not None
        assert 0 < due <= 0.2
        _wait_until_due(enricher)
        assert enricher.run_round().claimed == 1
    assert [w.record_id for w in sink.items] == ["001A", "001A"]


def test_a_lease_that_runs_out_is_claimed_again(database: Database) -> None:
    # The writer died with the rows: nobody confirms or gives them back.
    inbox, sink = Inbox(database, lease_seconds=0.3), _Sink()
    for enricher in _enricher(inbox, _Companies(), sink):
        _put(inbox, "001A", "001B")
        assert enricher.run_round().claimed == 2
        assert enricher.run_round().claimed == 0
        _wait_until_due(enricher)
        assert enricher.run_round().claimed == 2
    assert len(sink.items) == 4


def test_rows_put_by_another_process_are_found_after_rows_changed(
        database: Database) -> None:
    inbox, sink = Inbox(database), _Sink()
    for enricher in _enricher(inbox, _Companies(), sink):
        assert enricher.next_due() is None  # an empty inbox, read once
        other = Database(database.path)  # another process's connection
        try:
            Inbox(other).put(ORG, [InboxEntry("Account", "001A",
                                              {"Website": "https://a.example"})])
        finally:
            other.close()
        enricher.rows_changed()  # the fallback look
        assert enricher.next_due() == 0.0
        assert enricher.run_round().claimed == 1


def test_deleted_records_are_confirmed_without_being_enriched(database: Database) -> None:
    inbox, sink, provider = Inbox(database), _Sink(), _Companies()
    for enricher in _enricher(inbox, provider, sink):
        _put(inbox, "001A")
        _put(inbox, "001A", change_type="deleted")
        enricher.rows_stored()
        report = enricher.run_round()
        assert (report.claimed, report.deleted, report.handed_on) == (1, 1, 0)
    assert inbox.depth(ORG) == 0
    assert sink.items == []
    assert provider.threads == []


def test_a_source_in_memory_is_looked_up_inline_and_any_other_on_the_pool(
        database: Database) -> None:
    inbox, sink = Inbox(database), _Sink()
    local, remote = _Companies(), _Companies()
    enricher = Enricher(ORG, inbox, local, sink, workers=2, inline=True)
    _put(inbox, *(f"001Q{i}" for i in range(20)))
    assert enricher.run_round().handed_on == 20
    enricher.close()
    assert set(local.threads) == {threading.current_thread().name}
    for enricher in _enricher(inbox, remote, sink):
        _put(inbox, *(f"001S{i}" for i in range(6)))
        assert enricher.run_round().handed_on == 6
    assert len(remote.threads) == 6
    assert all(name.startswith(f"enrich-{ORG}") for name in remote.threads)
    assert len(sink.items) == 26


def test_a_round_hands_its_lookups_to_the_pool_and_waits_for_none_of_them(
        database: Database) -> None:
    inbox, sink = Inbox(database), _Sink()
    gate = threading.Event()
    provider = _Companies(gate=gate)
    delivered: list[Looked] = []
    enricher = Enricher(ORG, inbox, provider, sink, workers=2, round_size=4)
    try:
        _put(inbox, *(f"001G{i}" for i in range(6)))
        # Returns with every lookup still waiting on the source.
        report = enricher.start_round(delivered.append)
        assert (report.claimed, report.looking, report.handed_on) == (4, 4, 0)
        assert enricher.full()  # a round's worth out: no more claims until it is back
        assert enricher.start_round(delivered.append).claimed == 0
        assert delivered == []
        gate.set()
        wait_until(lambda: delivered, what="the round's lookups back")
        assert enricher.finish(delivered[0]).handed_on == 4
        assert not enricher.full()
        assert [w.record_id for w in sink.items] == [f"001G{i}" for i in range(4)]
        assert enricher.run_round().handed_on == 2
    finally:
        gate.set()
        enricher.close()


def test_a_round_failed_alike_is_given_back_in_one_transaction(database: Database) -> None:
    inbox, sink = Inbox(database), _Sink()
    provider = _Companies(busy=True, retry_after=30.0)
    for enricher in _enricher(inbox, provider, sink):
        _put(inbox, *(f"001R{i}" for i in range(5)))
        enricher.rows_stored()
        seen = _statements(database)
        assert enricher.run_round().retrying == 5
        # One transaction giving the five back (the claim is a read).
        assert sum(s.strip().upper().startswith("BEGIN") for s in seen) == 1
        due = enricher.next_due()
        assert due is not None
        assert 0 < due <= 30.0
    pending = inbox.pending(ORG)
    assert [(p.lease_owner, p.last_error) for p in pending] == [(None, "too many requests")] * 5
