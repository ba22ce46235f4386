"""Whether a record's Ily values change: the new outcome against what Salesforce holds.

Values arrive in two shapes — CSV strings from Bulk 2.0 ("" for null, numbers as
"12000" or "12000.0") and JSON values from REST — so both sides are normalised per
field type before comparing. Last Enriched is never compared: it changes on every write.
A refresh writes it alone when nothing else changed: it says when the values were last
confirmed, and moves the record out of the refresh's backlog.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from ilyd.enrich import fields as catalogue
from ilyd.enrich.fields import FieldType
from ilyd.enrich.values import EnrichmentOutcome
from ilyd.resync.plan import ObjectPlan

__all__ = ["ChangeDetector", "Prepared", "changed_values", "csv_value", "json_value",
           "normalise", "sent_values", "values_to_write"]

_NUMERIC = (FieldType.NUMBER, FieldType.CURRENCY)
_CATALOGUE = catalogue.by_api_name()


def normalise(api_name: str, value: object) -> str | Decimal:
    """A comparable form of one Ily field value ("" for null)."""
    if value is None or value == "":
        return ""
    field = _CATALOGUE.get(api_name)
    if field is not None and field.type in _NUMERIC:
        try:
            return Decimal(str(value)).normalize()
        except InvalidOperation:
            return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def changed_values(plan: ObjectPlan, current: Mapping[str, object],
                   outcome: EnrichmentOutcome) -> dict[str, object] | None:
    """The values to write when the outcome differs from `current`, else None.

    Only the plan's writable Ily fields are written; a field the outcome leaves alone
    (an "Error" outcome keeps the company data) is absent from the result.
    """
    values = {k: v for k, v in outcome.values.items() if k in plan.ily_fields}
    differs = any(
        normalise(name, values[name]) != normalise(name, current.get(name))
        for name in plan.compared_fields if name in values
    )
    return values if differs else None


def values_to_write(plan: ObjectPlan, current: Mapping[str, object],
                    outcome: EnrichmentOutcome) -> tuple[dict[str, object], bool] | None:
    """`changed_values` and True; for a refresh (`plan.stale_before`) whose values are
    all unchanged, the outcome's values (Last Enriched the only one sent) and False."""
    values = changed_values(plan, current, outcome)
    if values is not None:
        return values, True
    if plan.stale_before is None:
        return None
    values = {k: v for k, v in outcome.values.items() if k in plan.ily_fields}
    return (values, False) if catalogue.LAST_ENRICHED.api_name in values else None


def sent_values(plan: ObjectPlan, current: Mapping[str, object],
                values: Mapping[str, object]) -> dict[str, object]:
    """The values to send of those to write: a value Salesforce already holds is left
    out (the record ends up the same, and only what changed is written)."""
    compared = plan.compared_fields
    return {k: v for k, v in values.items()
            if k not in compared or normalise(k, v) != normalise(k, current.get(k))}


def csv_value(values: Mapping[str, object], column: str) -> str:
    """One Bulk 2.0 CSV cell: absent → "" (left unchanged), None → "#N/A" (set null)."""
    if column not in values:
        return ""
    value = values[column]
    if value is None:
        return "#N/A"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
            f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def json_value(value: object) -> object:
    """One value for a REST (Collections) body: datetimes as ISO text, None clears."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace(
            "+00:00", "Z")
    if isinstance(value, Decimal):
        return float(value)
    return value


@dataclass(frozen=True)
class Prepared:
    """An outcome made ready to send: its values, fingerprint and CSV cells (the
    `,cell,…\n` that follows a record's Id in the ingest file)."""

    values: Mapping[str, object]
    fingerprint: str
    csv_tail: bytes
    changed: bool = True  # False: a refresh confirming the values (Last Enriched alone)


class ChangeDetector:
    """`changed_values` for a stream of (row, outcome) pairs, memoised, with the CSV
    cells to send.

    `enrich_records` hands records sharing a domain one shared outcome, and the rows of
    one outcome mostly hold the same current Ily values (all empty on a first sync, the
    outcome's own on a second), so each distinct (outcome, current values) pair is
    compared and turned into CSV once. Call `reset()` between chunks: the memo keys on
    outcome identity and holds the outcomes alive until then.

    A cell whose value Salesforce already holds is sent empty — "leave unchanged" in
    Bulk 2.0 — rather than repeated: the record ends up the same, and Salesforce has
    fewer field values to process (a first sync sets 4 of ~20 fields on an unknown
    company instead of nulling 16 empty ones).
    """

    def __init__(self, plan: ObjectPlan, columns: tuple[str, ...]) -> None:
        self.plan = plan
        self.columns = columns  # the ingest CSV's Ily columns, in order
        self._compared = plan.compared_fields
        self._compared_set = frozenset(self._compared)
        self._memo: dict[tuple[int, tuple[object, ...]], Prepared | None] = {}
        self._fingerprints: dict[int, str] = {}
        self._alive: list[EnrichmentOutcome] = []

    def reset(self) -> None:
        """Forget the memo (the outcomes of the chunk just done)."""
        self._memo.clear()
        self._fingerprints.clear()
        self._alive.clear()

    def check(self, row: Mapping[str, object], outcome: EnrichmentOutcome) -> Prepared | None:
        """The prepared values to write for `row`, or None when nothing changes."""
        key = (id(outcome), tuple(map(row.get, self._compared)))
        try:
            return self._memo[key]
        except KeyError:
            prepared = self._memo[key] = self._prepare(row, outcome)
            return prepared

    def _prepare(self, row: Mapping[str, object], outcome: EnrichmentOutcome) -> Prepared | None:
        decided = values_to_write(self.plan, row, outcome)
        if decided is None:
            return None
        values, changed = decided
        fingerprint = self._fingerprints.get(id(outcome))
        if fingerprint is None:
            self._alive.append(outcome)  # its id() stays unique until reset()
            fingerprint = self._fingerprints[id(outcome)] = outcome.fingerprint()
        cells = ["" if name in values and name in self._compared_set
                 and normalise(name, values[name]) == normalise(name, row.get(name))
                 else csv_value(values, name) for name in self.columns]
        return Prepared(values, fingerprint, csv_tail(cells), changed)


def csv_tail(cells: list[str]) -> bytes:
    """`,a,b\n` for cells a, b, quoted as the csv module quotes them."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(["", *cells])
    return buffer.getvalue().encode("utf-8")
