"""The poller: changed records by SOQL, for orgs that cannot stream.

Each poll reads `SystemModstamp >= cursor ORDER BY SystemModstamp, Id` (SOQL compares
datetimes by the second, so the cursor is floored and rows already seen on the
boundary are skipped by (Id, SystemModstamp)). Rows whose input fields hash to what
ilyd last enriched are skipped: ilyd's own writes bump SystemModstamp, and must not
come back as work. The rest go into the same durable inbox the subscriber feeds; the
cursor is the object's catch-up checkpoint in the state store, advanced in the same
transaction as the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog

from ilyd import metrics
from ilyd.enrich.domain import source_fields
from ilyd.pipeline.work import inputs_hash
from ilyd.salesforce.rest import RestClient
from ilyd.salesforce.soql import identifier, soql
from ilyd.store.inbox import Inbox, InboxEntry
from ilyd.store.writes import WriteStateStore

__all__ = ["Poller", "changes_query", "parse_modstamp"]

log = structlog.get_logger(__name__)

# On the very first poll, look back this far: the org's clock and ours may differ.
_FIRST_LOOKBACK = timedelta(seconds=5)


def parse_modstamp(value: object) -> datetime:
    """Salesforce's `2024-05-01T12:34:56.000+0000` (or ISO `Z`) as an aware UTC datetime."""
    text = str(value).replace("Z", "+0000")
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(UTC)


def changes_query(sobject: str, since: datetime, until: datetime | None = None) -> str:
    """SOQL for the object's records changed at or after `since` (and before `until`),
    oldest first, with the fields ilyd reads (converted Leads left out: ilyd cannot
    write them)."""
    select = ", ".join(identifier(f) for f in ("Id", "SystemModstamp", *source_fields(sobject)))
    converted = " AND IsConverted = false" if sobject == "Lead" else ""
    before = " AND SystemModstamp < {until}" if until is not None else ""
    template = (f"SELECT {select} FROM {identifier(sobject)}"  # noqa: S608
                f" WHERE SystemModstamp >= {{since}}{before}{converted}"
                " ORDER BY SystemModstamp, Id")
    return soql(template, since=since, until=until)


class Poller:
    """Polls one org's objects and feeds changed records into the inbox."""

    def __init__(
        self,
        org: str,
        rest: RestClient,
        inbox: Inbox,
        state: WriteStateStore,
        objects: tuple[str, ...],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.org = org
        self.rest = rest
        self.inbox = inbox
        self.state = state
        self.objects = objects
        self._clock = clock
        # (Id, SystemModstamp) of rows on or after the floored cursor already handled.
        self._seen: dict[str, set[tuple[str, datetime]]] = {o: set() for o in objects}

    def poll(self) -> int:
        """Poll every object once; returns how many records went into the inbox."""
        return sum(self.poll_object(sobject) for sobject in self.objects)

    def poll_object(self, sobject: str, since: datetime | None = None) -> int:
        """Poll one object (from `since` instead of its checkpoint when given, as a
        replay-gap catch-up does); returns how many records went into the inbox."""
        cursor = since if since is not None else self.inbox.replay.checkpoint(self.org, sobject)
        if cursor is None:
            cursor = self._clock() - _FIRST_LOOKBACK
            self.inbox.replay.advance_checkpoint(self.org, sobject, cursor)
        since = cursor.replace(microsecond=0)
        inputs = source_fields(sobject)
        metrics.POLLS.inc()
        rows = list(self.rest.query(changes_query(sobject, since)))
        seen = self._seen.setdefault(sobject, set())
        fresh = []
        newest = cursor
        for row in rows:
            stamp = parse_modstamp(row["SystemModstamp"])
            key = (str(row["Id"]), stamp)
            newest = max(newest, stamp)
            if key in seen:
                continue
            seen.add(key)
            fresh.append((row, stamp))
        known = self.state.inputs(self.org, sobject, [str(r["Id"]) for r, _ in fresh])
        entries = []
        for row, stamp in fresh:
            fields = {name: row.get(name) for name in inputs}
            if known.get(str(row["Id"])) == inputs_hash(sobject, fields):
                continue  # ilyd's own write, or a change of fields ilyd does not read
            entries.append(InboxEntry(sobject, str(row["Id"]), fields, "updated", stamp))
        if entries:
            self.inbox.put(self.org, entries, source=f"poll:{sobject}")
        if newest > cursor:
            self.inbox.replay.advance_checkpoint(self.org, sobject, newest)
        floor = newest.replace(microsecond=0)
        self._seen[sobject] = {k for k in seen if k[1] >= floor}
        if entries:
            log.debug("poll_found_changes", sobject=sobject, rows=len(rows), queued=len(entries))
        return len(entries)
