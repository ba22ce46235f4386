"""Leases of inbox rows, kept in memory: which worker holds which record, until when.

One daemon owns the state database (it holds the state directory's lock), and a
restarted daemon or org starts with no lease, so leases need not be written: a claim is
a read of the inbox (see ilyd/store/inbox.py). A record stays leased while its row is
replaced by newer changes, so no two workers process one record at once; a lease also
counts its record's claims (`attempts`) until the row is confirmed or given back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Lease", "Leases"]

Key = tuple[str, str]  # (sobject, record id)


class _Row(Protocol):
    def __getitem__(self, key: str) -> object: ...


class _Taken(Protocol):
    sobject: str
    record_id: str
    attempts: int


class _Held(Protocol):
    org: str
    sobject: str
    record_id: str
    lease_owner: str | None


@dataclass
class Lease:
    """A record held by `owner` until `until`; `attempts` counts its claims."""

    owner: str
    until: float
    attempts: int


class Leases:
    """Every org's leases in one Inbox. Thread-safe."""

    def __init__(self) -> None:
        self._held: dict[str, dict[Key, Lease]] = {}
        # Claims of each org's rows so far: rows handed over by a put (`take`) are taken
        # only if no claim, which may have read them, ran since the put began.
        self._epochs: dict[str, int] = {}
        self._lock = threading.Lock()

    def epoch(self, org: str) -> int:
        """How many claims of the org's rows ran so far (see `take`)."""
        with self._lock:
            return self._epochs.get(org, 0)

    def take(self, org: str, epoch: int, items: Sequence[_Taken], *, owner: str,
             now: float, until: float) -> list[tuple[_Taken, int]] | None:
        """Lease these rows as `claim` would (skipping records already held), without
        reading them: None, with nothing leased, when a claim of the org's rows ran since
        `epoch` was read (it may have taken some of them)."""
        taken: list[tuple[_Taken, int]] = []
        with self._lock:
            if self._epochs.get(org, 0) != epoch:
                return None
            held = self._held.setdefault(org, {})
            for item in items:
                key = (item.sobject, item.record_id)
                lease = held.get(key)
                if lease is not None and lease.until > now:
                    continue
                attempts = max(item.attempts, lease.attempts if lease else 0) + 1
                held[key] = Lease(owner, until, attempts)
                taken.append((item, attempts))
        return taken

    def claim(self, org: str, read: Callable[[int], Sequence[_Row]], *, owner: str,
              now: float, until: float, limit: int) -> list[tuple[_Row, int]]:
        """Lease up to `limit` of the rows `read(n)` returns (the first n claimable rows
        in the database, oldest first), skipping records already held; returns each row
        taken with its claim count. `read` runs under the lock, so two claims never take
        one row."""
        taken: list[tuple[_Row, int]] = []
        with self._lock:
            self._epochs[org] = self._epochs.get(org, 0) + 1
            held = self._held.setdefault(org, {})
            busy = sum(1 for lease in held.values() if lease.until > now)
            # n rows with at most `busy` held among them leave `limit` to take.
            for row in read(limit + busy):
                key = (str(row["sobject"]), str(row["record_id"]))
                lease = held.get(key)
                if lease is not None and lease.until > now:
                    continue  # in a worker's hands (perhaps an older version of it)
                attempts = max(int(row["attempts"]), lease.attempts if lease else 0) + 1  # type: ignore[call-overload]
                held[key] = Lease(owner, until, attempts)
                taken.append((row, attempts))
                if len(taken) >= limit:
                    break
        return taken

    def live(self, org: str, now: float) -> dict[Key, Lease]:
        """The org's leases that have not run out."""
        with self._lock:
            return {key: lease for key, lease in self._held.get(org, {}).items()
                    if lease.until > now}

    def end(self, items: Iterable[_Held]) -> list[_Held]:
        """End the items' leases still held by their workers; returns those items (a
        lease that ran out and went to another worker is that worker's)."""
        ended: list[_Held] = []
        with self._lock:
            for item in items:
                held = self._held.get(item.org)
                key = (item.sobject, item.record_id)
                lease = held.get(key) if held else None
                if held is not None and lease is not None and lease.owner == item.lease_owner:
                    del held[key]
                    ended.append(item)
        return ended
