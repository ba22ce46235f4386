"""Record writes: `save`, allOrNone, history and the change feed.

Every write path (REST sObject, Collections, Bulk 2.0, Tooling, admin) goes through
`save`, so the rules — Salesforce's codes and wording included — live in one place:
`dml_prepare` validates each WriteOp, this module applies the lot under the org's lock,
records field history and publishes the changes. The request and result types
(`dml_ops`) are exported here too, as every caller of `save` uses them.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

from ilyd.devorg.changes import Change
from ilyd.devorg.dml_ops import ROLLED_BACK, RecordError, SaveResult, WriteOp
from ilyd.devorg.dml_prepare import Writer, _Prepared
from ilyd.devorg.org import PERMISSION_OBJECTS, OrgState, Record
from ilyd.devorg.values import now

__all__ = ["RecordError", "SaveResult", "WriteOp", "collections_paused", "save"]

_pause_lock = threading.Lock()
_pauses = 0
_resume = False


@contextlib.contextmanager
def collections_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while records are written.

    A write allocates some 15 short-lived container objects per record (ops, results,
    changes, events), all freed by reference counting within milliseconds; collections
    triggered meanwhile found nothing to free and cost a fifth of a Bulk job's time.
    Nested and concurrent pauses count, so the last one out turns collection back on —
    only if it was on before the first one came in."""
    global _pauses, _resume
    with _pause_lock:
        if _pauses == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _resume:
                gc.enable()


def save(org: OrgState, user_id: str, ops: list[WriteOp], *, all_or_none: bool = False,
         tooling: bool = False, lock_share: float | None = None) -> list[SaveResult]:
    """Validate and apply `ops` atomically per record (or all-or-none); publish changes."""
    share = org.extra.get("lock_row_share", 0.0) if lock_share is None else lock_share
    writer = Writer(org, user_id, tooling=tooling, lock_share=float(share))  # type: ignore[arg-type]
    results: list[SaveResult] = []
    prepared: list[_Prepared | None] = []
    with org.lock, collections_paused():
        stamp = now()
        for op in ops:
            try:
                p = writer.prepare(op, stamp)
            except RecordError as exc:
                prepared.append(None)
                results.append(SaveResult(op.record_id if op.kind != "create" else None,
                                          False, [exc]))
                continue
            prepared.append(p)
            if p.new is not None:
                writer.pending[p.record_id] = (p.sobject, p.new)
            results.append(SaveResult(p.record_id, True, created=p.created))
        if all_or_none and any(not r.success for r in results):
            for r in results:
                if r.success:
                    r.success, r.errors = False, [RecordError(*ROLLED_BACK)]
                    r.id = None if r.created else r.id
            return results
        _commit(org, user_id, [p for p in prepared if p is not None], stamp)
    return results


_AUDIT_FIELDS = frozenset({"Id", "IsDeleted", "CreatedDate", "CreatedById", "LastModifiedDate",
                           "LastModifiedById", "SystemModstamp"})
_HISTORY_NAMES: dict[frozenset[str], tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _history_names(changed: frozenset[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A history entry's changed_fields and the names of the values it keeps, sorted;
    shared by every entry with the same changed fields."""
    names = _HISTORY_NAMES.get(changed)
    if names is None:
        if len(_HISTORY_NAMES) > 4096:  # creates and odd updates: keep the cache small
            _HISTORY_NAMES.clear()
        names = _HISTORY_NAMES[changed] = (
            tuple(sorted(changed - {"SystemModstamp", "LastModifiedDate"})),
            tuple(k for k in sorted(changed) if k not in _AUDIT_FIELDS))
    return names


def _change_of(p: _Prepared, record: Record, user_id: str, stamp: object) -> Change:
    """Change(...) without the frozen dataclass's field-by-field __init__ (hot: a Bulk
    job publishes one per record); the result is the same frozen instance."""
    change = _object_new(Change)
    vars(change).update(sobject=p.sobject, record_id=p.record_id, change_type=p.change_type,
                        changed_fields=p.changed, record=record, user_id=user_id,
                        timestamp=stamp)
    return change


_object_new = object.__new__


def _commit(org: OrgState, user_id: str, prepared: list[_Prepared], stamp: object) -> None:
    """Apply prepared writes; caller holds org.lock."""
    if not prepared:
        return
    persist_rows: list[tuple[str, str, Record, bool]] = []
    changes: list[Change] = []
    publish = org.changes.has_subscribers
    perms = False
    history = org.history
    persist = org.persistence is not None
    for p in prepared:
        table = org.tables[p.sobject]
        if p.change_type == "deleted":
            assert p.old is not None
            table.live.pop(p.record_id, None)
            gone = dict(p.old, IsDeleted=True, SystemModstamp=stamp)
            table.deleted[p.record_id] = gone
            if persist:
                persist_rows.append((p.sobject, p.record_id, gone, True))
        else:
            assert p.new is not None
            if table.deleted:
                table.deleted.pop(p.record_id, None)
            table.live[p.record_id] = p.new
            if persist:
                persist_rows.append((p.sobject, p.record_id, p.new, False))
        if p.sobject in PERMISSION_OBJECTS:
            perms = True
        after = p.new if p.new is not None else p.old
        assert after is not None
        listed, names = _history_names(p.changed)
        get = after.get
        history.append(p.record_id, (stamp, user_id, p.change_type, listed, names,
                                     tuple([get(k) for k in names])))
        if publish:
            changes.append(_change_of(p, after, user_id, stamp))
    if persist:
        org.persistence(persist_rows)
    if perms:
        if any(p.sobject == "CustomField" for p in prepared):
            org.rebuild_custom_fields()
        org.permissions_changed()
    if changes:
        org.changes.publish(changes)
