"""The dry-run report of a resync: one CSV row per Ily value that would change.

`ilyd ctl resync ORG --dry-run [--report PATH.csv]` reads, enriches and compares exactly
as a resync does — the same reads, the same overwrite policies and scope, the same
records left to the real-time path — and instead of sending a batch, appends its rows
here. Columns: Id, object, field, current value, proposed value, source (the providers
that supplied the values), decision: `write` (a resync would write it), or why the
overwrite policy keeps the current value (`protected`: a person changed it; `if_blank`).
Rows are appended batch by batch before the checkpoint moves on, so a resumed dry run
continues the file; when the run is done, a summary per object and field follows
(`Id` = `(summary)`, decision = `write=N protected=N if_blank=N`).
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ilyd.enrich.fields import LAST_ENRICHED
from ilyd.resync.compare import normalise

__all__ = ["COLUMNS", "SUMMARY", "WRITE", "DryRunReport", "value_rows"]

COLUMNS = ("Id", "object", "field", "current", "proposed", "source", "decision")
WRITE = "write"
SUMMARY = "(summary)"
Row = tuple[str, str, str, str, str, str, str]


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def value_rows(sobject: str, record_id: str, current: Mapping[str, object], *,
               written: Mapping[str, object] | None, kept: Mapping[str, object],
               left_out: Mapping[str, str], source: str | None) -> list[Row]:
    """The rows of one record: each value of `written` (what a resync would send, None
    when nothing) that differs from `current`, and each value the policies kept
    (`kept`: the outcome's values, `left_out`: field → why) that differs too."""
    rows: list[Row] = []
    for name, value in (written or {}).items():
        if name == LAST_ENRICHED.api_name:
            continue
        if normalise(name, value) != normalise(name, current.get(name)):
            rows.append((record_id, sobject, name, _text(current.get(name)), _text(value),
                         source or "", WRITE))
    for name, reason in left_out.items():
        value = kept.get(name)
        if normalise(name, value) != normalise(name, current.get(name)):
            rows.append((record_id, sobject, name, _text(current.get(name)), _text(value),
                         source or "", reason))
    return rows


class DryRunReport:
    """The report file of one dry run (a new run starts it, a resumed one appends)."""

    def __init__(self, path: Path | str, *, fresh: bool) -> None:
        self.path = Path(path)
        if fresh:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("w", newline="", encoding="utf-8") as handle:
                csv.writer(handle).writerow(COLUMNS)

    def add(self, rows: Iterable[Sequence[str]]) -> int:
        """Append rows, on disk before the checkpoint moves on; returns how many."""
        rows = list(rows)
        if not rows:
            return 0
        with self.path.open("a", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows)
            handle.flush()
            os.fsync(handle.fileno())
        return len(rows)

    def finish(self) -> dict[str, dict[str, int]]:
        """Append the summary per object and field; returns it ("object.field" →
        decision → count)."""
        tally: dict[tuple[str, str], Counter[str]] = {}
        with self.path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row["Id"] == SUMMARY:
                    continue
                tally.setdefault((row["object"], row["field"]), Counter())[row["decision"]] += 1
        self.add([(SUMMARY, sobject, name, "", "", "",
                   " ".join(f"{d}={n}" for d, n in sorted(counts.items())))
                  for (sobject, name), counts in sorted(tally.items())])
        return {f"{s}.{n}": dict(c) for (s, n), c in sorted(tally.items())}
