"""The overwrite policies: which Ily values ilyd may write over what a record holds.

Per Ily field (`[defaults.enrich] overwrite`):

- `always`: every enrichment writes the field.
- `if_blank`: only an empty field is written.
- `unless_edited` (the default): the field is written when it is empty, or when it
  still holds what ilyd last wrote there (`ilyd.store.field_state` keeps a digest of
  each value written). A value that differs was put there by a person (or another
  tool): the field is then protected, and left alone from then on, until the value is
  cleared in Salesforce or an admin runs `ilyd ctl release ORG RECORD_ID [--field F]`.
  A value equal to the one ilyd would write is no edit (writing it changes nothing).
  A record whose last change was ilyd's own (LastModifiedById is the integration user,
  read with the values) holds no person's edit; a value equal to what ilyd's last call
  sent is ilyd's too (`field_pending`, stored before the call: its answer may have been
  lost to a timeout or a crash while the write landed). Records ilyd
  wrote before the digests were kept in this state file have none: their values are
  taken as ilyd's.

Last Enriched is ilyd's own record of its work: always written. The current values come
from the batched read the writer makes anyway (`ilyd.pipeline.landed.read_current`), or
from the resync's own read of the records: no extra API call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import structlog

from ilyd import metrics
from ilyd.config.enrich import EnrichConfig, OverwritePolicy
from ilyd.enrich.fields import LAST_ENRICHED
from ilyd.enrich.values import EnrichmentOutcome
from ilyd.errors import SalesforceError
from ilyd.pipeline.landed import (
    by_short_id,
    current_query,
    landed,
    read_current,
    wanted_names,
)
from ilyd.pipeline.scope import scope_clause
from ilyd.salesforce.rest import RestClient
from ilyd.store.field_state import FieldStateStore, RecordsState, digest
from ilyd.store.record_hashes import RecordHashStore

__all__ = ["IF_BLANK", "PROTECTED", "FieldPolicy"]

log = structlog.get_logger(__name__)

# Why a value was left out (the dry-run report and history say these).
PROTECTED = "protected"
IF_BLANK = "if_blank"
# A read refused for a column the org no longer has is made again without it, this often.
_MAX_READS = 4
# Read with the values: a record last changed by ilyd itself holds no person's edit.
LAST_MODIFIED_BY = "LastModifiedById"
# The sets of field names whose `read_names` are kept (an org writes a few).
_KNOWN_NAME_SETS = 64


def _names_of(wanted: Sequence[tuple[str, Mapping[str, Any]]]) -> frozenset[str]:
    """Every field name of the values in `wanted`."""
    return frozenset().union(*[values.keys() for _, values in wanted])


class _Policed(NamedTuple):
    """What the policies make of a set of Ily fields."""

    read: frozenset[str]  # the fields to read (`read_names`)
    names: frozenset[str]  # the fields the policies decide on (not `always`)
    edited: frozenset[str]  # the `unless_edited` ones
    if_blank: frozenset[str]  # the `if_blank` ones


@dataclass(frozen=True)
class BatchRead:
    """What the writer's read of a batch decided."""

    landed: set[str]  # unsure ids already holding their values
    outside: set[str]  # ids outside the scope
    current: Mapping[str, Mapping[str, Any]]  # the values read, by 15-character Id
    left_out: dict[str, dict[str, str]]  # id -> field -> why the policies kept it
    reads: int = 0  # the queries it took (API calls)


class FieldPolicy:
    """Applies one org's overwrite policies to values about to be written."""

    def __init__(self, org: str, enrich: EnrichConfig, fields: FieldStateStore,
                 hashes: RecordHashStore, user_id: Callable[[], str | None], *,
                 scope: Iterable[tuple[str, str]] = ()) -> None:
        self.org = org
        self.scope = tuple(scope)  # [org.scope]: checked in the same read
        self.user_id = user_id  # the integration user's Id
        self.enrich = enrich
        self.fields = fields
        self.hashes = hashes
        # Asked several times a flush, of the same few sets of Ily fields.
        self._policed: dict[frozenset[str], _Policed] = {}

    def read_names(self, names: Iterable[str]) -> set[str]:
        """The fields among `names` whose current value the policy needs (with
        LastModifiedById when a field is `unless_edited`)."""
        return set(self._policies_of(frozenset(names)).read)

    def _policies_of(self, names: frozenset[str]) -> _Policed:
        known = self._policed.get(names)
        if known is None:
            policed = frozenset(n for n in names if n != LAST_ENRICHED.api_name
                                and self.enrich.policy(n) is not OverwritePolicy.ALWAYS)
            edited = frozenset(n for n in policed
                               if self.enrich.policy(n) is OverwritePolicy.UNLESS_EDITED)
            if len(self._policed) >= _KNOWN_NAME_SETS:
                self._policed.clear()
            known = self._policed[names] = _Policed(
                policed | {LAST_MODIFIED_BY} if edited else policed, policed, edited,
                policed - edited)
        return known

    def read_query(self, sobject: str, wanted: Sequence[tuple[str, Mapping[str, Any]]],
                   unsure: set[str]) -> str | None:
        """The SOQL `check_batch` reads the batch with (None: it needs no read), for a
        caller that reads several objects' batches in one call."""
        return current_query(sobject, *self._read_plan(sobject, wanted, unsure))

    def _read_plan(self, sobject: str, wanted: Sequence[tuple[str, Mapping[str, Any]]],
                   unsure: set[str]) -> tuple[list[str], frozenset[str], str | None]:
        """(ids, names, scope condition) of the batch's read."""
        policed = self._policies_of(_names_of(wanted)).read
        scope = scope_clause(self.scope, sobject) if self.scope else None
        maybe = [(r, v) for r, v in wanted if r in unsure] if unsure else []
        names = policed | wanted_names(maybe) if maybe else policed
        ids = [r for r, _ in (wanted if policed or scope else maybe)]
        return ids, names, scope

    def check_batch(self, rest: RestClient, sobject: str,
                    wanted: Sequence[tuple[str, MutableMapping[str, Any]]],
                    unsure: set[str],
                    dropped: Callable[[SalesforceError], str | None], *,
                    read: Mapping[str, Mapping[str, Any]] | None = None,
                    state: RecordsState | None = None,
                    ) -> BatchRead:
        """The writer's one read of a batch: the current values the policies need (then
        `apply`), the org's scope condition, and, for the `unsure` records (an earlier
        write may have landed unconfirmed), the values `landed` needs. Returns the unsure
        ids already holding their values, the ids outside the scope (not to be
        written), the values read and the policies' decisions. `dropped(error)`: the
        column an unknown-column error named, once the writer took it out of the values
        (the read is then made again), else None. `read`: the rows of `read_query`,
        when the caller read them already (by 15-character Id); `state`: the records'
        hashes and policy state, when the caller read them already."""
        maybe = [(r, v) for r, v in wanted if r in unsure] if unsure else []
        if read is not None:
            current, reads = read, 0
            scope = scope_clause(self.scope, sobject) if self.scope else None
        else:
            ids, names, scope = self._read_plan(sobject, wanted, unsure)
            current, reads = self._read(rest, sobject, (ids, names, scope), dropped)
        outside = {r for r, _ in wanted if r[:15] not in current} if scope else set()
        left_out = self.apply(sobject, wanted, current, state=state)
        return BatchRead(landed(current, maybe), outside, current, left_out, reads)

    @staticmethod
    def _read(rest: RestClient, sobject: str,
              plan: tuple[list[str], frozenset[str], str | None],
              dropped: Callable[[SalesforceError], str | None],
              ) -> tuple[Mapping[str, Mapping[str, Any]], int]:
        """The batch's rows and the queries they took, read again without a column the
        org refused as unknown (once the writer dropped it)."""
        ids, names, scope = plan
        reads = 0
        for _ in range(_MAX_READS):
            query = current_query(sobject, ids, names, scope)  # as `read_current` sends it
            reads += query is not None
            try:
                return (by_short_id(rest.query(query)) if query else {}), reads
            except SalesforceError as exc:
                column = dropped(exc)
                if column is None or column not in names:
                    raise
                names = names - {column}
        return read_current(rest, sobject, ids, names, scope), reads + 1

    def apply(self, sobject: str, wanted: Sequence[tuple[str, MutableMapping[str, Any]]],
              current: Mapping[str, Mapping[str, Any]], *,
              count: bool = True,
              state: RecordsState | None = None) -> dict[str, dict[str, str]]:
        """Take out of each (record id, values) of `wanted` the values the policies
        refuse, given the records' `current` values (by 15-character Id; a record not
        there is left as it is). Returns record id → field → why it was left out.
        `count`: False for a dry run (no metrics, nothing stored). `state`: the records'
        hashes and policy state, when the caller read them already (else they are read
        here)."""
        policies = self._policies_of(_names_of(wanted))
        names, edited, if_blank = policies.names, policies.edited, policies.if_blank
        if not names:
            return {}
        if state is not None:
            written, sent, protected = state.written, state.pending, state.protected
            stored = state.hashes
        elif edited:
            ids = [record_id for record_id, _ in wanted]
            written, sent, protected = self.fields.policy_state(self.org, sobject, ids)
            stored = self.hashes.get_many(self.org, sobject, ids)
        else:
            written, sent, protected, stored = {}, {}, {}, {}
        ilyd: str | None = None  # the integration user's 15-character Id, once needed
        left_out: dict[str, dict[str, str]] = {}
        newly: list[tuple[str, str]] = []
        cleared: list[tuple[str, str]] = []
        for record_id, values in wanted:
            row = current.get(record_id[:15])
            if row is None:
                continue
            shielded = protected.get(record_id, ())
            ilyds: bool | None = None
            for name in sorted(values.keys() & names):
                now = row.get(name)
                if now is None or now == "":
                    if name in shielded and name in edited:
                        # An admin cleared the person's value: ilyd's again.
                        cleared.append((record_id, name))
                    continue
                if name in if_blank:
                    reason: str | None = IF_BLANK
                else:
                    if ilyds is None:
                        if ilyd is None:
                            ilyd = (self.user_id() or "")[:15]
                        last = stored.get(record_id)
                        ilyds = ((bool(ilyd)
                                  and str(row.get(LAST_MODIFIED_BY) or "")[:15] == ilyd)
                                 or (last is not None
                                     and last.written_at < self.fields.tracking_since))
                    reason = self._unless_edited(
                        (record_id, name), now=now, new=values[name],
                        written=written.get(record_id), sent=sent.get(record_id),
                        is_protected=name in shielded, ilyds=ilyds, newly=newly)
                if reason is not None:
                    values.pop(name, None)
                    left_out.setdefault(record_id, {})[name] = reason
                    if reason == PROTECTED and count:
                        metrics.FIELDS_PROTECTED.labels(org=self.org, sobject=sobject,
                                                        field=name).inc()
        if count:
            for record_id, name in newly:
                log.info("ily_field_protected", org=self.org, sobject=sobject,
                         record=record_id, field=name)
            self.fields.protect(self.org, sobject, newly)
            self.fields.unprotect(self.org, sobject, cleared)
        return left_out

    def police_rows(self, sobject: str, rows: Sequence[Mapping[str, Any]],
                    outcomes: Sequence[EnrichmentOutcome], *,
                    count: bool = True) -> tuple[list[EnrichmentOutcome],
                                                 dict[str, dict[str, str]]]:
        """`apply` for rows a resync read (their current Ily values and LastModifiedById
        among their columns): the outcomes with the refused values taken out (each keeps
        its fingerprint: the real-time path compares whole outcomes), and why."""
        wanted = [(str(row["Id"]), dict(outcome.values))
                  for row, outcome in zip(rows, outcomes, strict=True)
                  if not outcome.retryable]
        left_out = self.apply(sobject, wanted, {str(r["Id"])[:15]: r for r in rows},
                              count=count)
        if not left_out:
            return list(outcomes), left_out
        kept = dict(wanted)
        policed = []
        for row, outcome in zip(rows, outcomes, strict=True):
            record_id = str(row["Id"])
            if record_id not in left_out:
                policed.append(outcome)
                continue
            reduced = replace(outcome, values=kept[record_id])
            object.__setattr__(reduced, "_fingerprint", outcome.fingerprint())
            policed.append(reduced)
        return policed, left_out

    @staticmethod
    def _unless_edited(key: tuple[str, str], *, now: object, new: object,
                       written: Mapping[str, str] | None, sent: Mapping[str, str] | None,
                       is_protected: bool,
                       ilyds: bool, newly: list[tuple[str, str]]) -> str | None:
        """None to write the field holding `now` (not blank), else why not (a newly
        edited field is added to `newly`); `key` is (record id, field), `ilyds` whether
        the record's values are known to be ilyd's (its last change was ilyd's, or ilyd
        wrote it before digests were kept)."""
        name = key[1]
        if is_protected:
            return PROTECTED
        held = digest(name, now)
        if ilyds or held == digest(name, new):
            return None
        if written is not None and written.get(name) == held:
            return None
        if sent is not None and sent.get(name) == held:  # a write whose answer was lost
            return None
        newly.append(key)
        return PROTECTED
