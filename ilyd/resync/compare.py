"""Whether a record's Ily values change: the new outcome against what Salesforce holds.

Values arrive in two shapes — CSV strings from Bulk 2.0 ("" for null, numbers as
"12000" or "12000.0") and JSON values from REST — so both sides are normalised per
field type before comparing. Last Enriched is never compared: it changes on every write.
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
           "normalise"]

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


class ChangeDetector:
    """`changed_values` for a stream of (row, outcome) pairs, memoised.

    `enrich_records` hands records sharing a domain one shared outcome, and the rows of
    one outcome mostly hold the same current Ily values (all empty on a first sync, the
    outcome's own on a second), so each outcome is prepared once and each distinct
    (outcome, current values) pair compared once. Call `reset()` between chunks: the
    memo keys on outcome identity and holds the outcomes alive until then.
    """

    def __init__(self, plan: ObjectPlan, columns: tuple[str, ...]) -> None:
        self.plan = plan
        self.columns = columns  # the ingest CSV's Ily columns, in order
        self._compared = plan.compared_fields
        self._prepared: dict[int, tuple[EnrichmentOutcome, Prepared]] = {}
        self._verdicts: dict[tuple[int, tuple[object, ...]], bool] = {}

    def reset(self) -> None:
        """Forget the memo (the outcomes of the chunk just done)."""
        self._prepared.clear()
        self._verdicts.clear()

    def check(self, row: Mapping[str, object], outcome: EnrichmentOutcome) -> Prepared | None:
        """The prepared values to write for `row`, or None when nothing changes."""
        key = id(outcome)
        current = tuple(map(row.get, self._compared))
        verdict = self._verdicts.get((key, current))
        if verdict is None:
            verdict = changed_values(self.plan, row, outcome) is not None
            self._verdicts[(key, current)] = verdict
        if not verdict:
            return None
        entry = self._prepared.get(key)
        if entry is None:
            values = {k: v for k, v in outcome.values.items() if k in self.plan.ily_fields}
            cells = [csv_value(values, c) for c in self.columns]
            entry = (outcome, Prepared(values, outcome.fingerprint(), csv_tail(cells)))
            self._prepared[key] = entry
        return entry[1]


def csv_tail(cells: list[str]) -> bytes:
    """`,a,b\n` for cells a, b, quoted as the csv module quotes them."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(["", *cells])
    return buffer.getvalue().encode("utf-8")
