"""Confirmations: written records' hashes, inputs and inbox rows, many orgs per commit."""

from __future__ import annotations

import threading

from ilyd.store import Database
from ilyd.store.confirmations import Confirmation, confirm
from ilyd.store.group_commit import shared
from ilyd.store.inbox import Inbox, InboxEntry
from ilyd.store.record_hashes import RecordHashStore
from ilyd.store.writes import WriteStateStore
from tests.helpers.store import write_lock_held
from tests.helpers.waiting import wait_until


def _lead(n: int, email: str = "a@example.com") -> InboxEntry:
    return InboxEntry("Lead", f"00Q{n:015d}", {"Email": email})


def _stores(db: Database) -> tuple[RecordHashStore, WriteStateStore]:
    """The stores whose tables a confirmation writes (the writer opens them in the daemon)."""
    return RecordHashStore(db), WriteStateStore(db)


def _written(inbox: Inbox, org: str) -> Confirmation:
    items = inbox.claim(org, 10)
    return Confirmation(inbox, org, items,
                        hashes=[(i.sobject, i.record_id, f"v-{i.record_id}") for i in items],
                        inputs=[(i.sobject, i.record_id, f"in-{i.record_id}") for i in items],
                        written_at=1_700_000_000.0)


def test_confirmations_queued_behind_a_transaction_are_committed_together(
        db: Database) -> None:
    hashes, inputs = _stores(db)
    inboxes = {org: Inbox(db) for org in ("a", "b", "c")}
    for n, (org, inbox) in enumerate(inboxes.items()):
        inbox.put(org, [_lead(n * 10 + k) for k in range(3)])
    pending = {org: _written(inbox, org) for org, inbox in inboxes.items()}
    group = shared(db)
    before = (group.groups, group.requests)
    counts: dict[str, int] = {}
    first = threading.Thread(target=lambda: counts.__setitem__("a", confirm(pending["a"])))
    others = [threading.Thread(target=lambda o=o: counts.__setitem__(o, confirm(pending[o])))
              for o in ("b", "c")]
    with write_lock_held(db):
        first.start()
        # "a" leads and waits for the write lock; "b" and "c" queue behind it.
        wait_until(lambda: group.writing, timeout=30, what="the leader writing")
        for t in others:
            t.start()
        wait_until(lambda: group.waiting == 2, timeout=30, what="two queued behind it")
    for t in (first, *others):
        t.join(30)
    assert counts == {"a": 3, "b": 3, "c": 3}
    assert (group.groups - before[0], group.requests - before[1]) == (2, 3)
    for org, inbox in inboxes.items():
        assert inbox.depth(org) == 0
        ids = [i.record_id for i in pending[org].items]
        stored = hashes.get_many(org, "Lead", ids)
        assert {rid: (h.hash, h.source) for rid, h in stored.items()} == {
            rid: (f"v-{rid}", "realtime") for rid in ids}
        assert inputs.inputs(org, "Lead", ids) == {rid: f"in-{rid}" for rid in ids}


def test_a_row_replaced_while_it_was_written_is_kept_and_claimable_again(db: Database) -> None:
    _stores(db)
    inbox = Inbox(db)
    inbox.put("acme", [_lead(1), _lead(2)])
    confirmation = _written(inbox, "acme")
    inbox.put("acme", [_lead(2, "newer@example.com")])  # a change during the write
    assert confirm(confirmation) == 1
    [newer] = inbox.claim("acme", 10)
    assert (newer.record_id, newer.fields["Email"]) == (_lead(2).record_id, "newer@example.com")


def test_thousands_of_hashes_are_stored_in_a_few_statements(db: Database) -> None:
    hashes = RecordHashStore(db)
    ids = [f"001{n:015d}" for n in range(2_000)]
    seen: list[str] = []
    db.connection().set_trace_callback(seen.append)
    assert hashes.put_many("acme", "Account", {rid: f"h{rid}" for rid in ids}, "resync") == 2_000
    db.connection().set_trace_callback(None)
    assert len([s for s in seen if s.startswith("INSERT")]) <= 20
    stored = hashes.get_many("acme", "Account", ids)
    assert len(stored) == 2_000
    assert stored[ids[-1]].hash == f"h{ids[-1]}"


def test_a_put_and_a_confirmation_queued_together_share_a_transaction(db: Database) -> None:
    _stores(db)
    inbox = Inbox(db)
    inbox.put("a", [_lead(1)])
    inbox.put("c", [_lead(3)])
    leader, confirmation = _written(inbox, "a"), _written(inbox, "c")
    group = shared(db)
    before = (group.groups, group.requests)
    threads = [threading.Thread(target=confirm, args=(leader,)),
               threading.Thread(target=inbox.put, args=("b", [_lead(2)])),
               threading.Thread(target=confirm, args=(confirmation,))]
    with write_lock_held(db):
        threads[0].start()
        wait_until(lambda: group.writing, timeout=30, what="the leader writing")
        for t in threads[1:]:
            t.start()
        wait_until(lambda: group.waiting == 2, timeout=30, what="two queued behind it")
    for t in threads:
        t.join(30)
    assert (group.groups - before[0], group.requests - before[1]) == (2, 3)
    assert (inbox.depth("a"), inbox.depth("b"), inbox.depth("c")) == (0, 1, 0)
