"""Whether a write whose outcome ilyd does not know already landed in Salesforce.

Two cases leave a write's outcome unknown: the daemon died between Salesforce's answer
and the local confirmation (the record is still in the inbox at the next start), and a
call that failed without a clear answer (a dropped connection, a timeout: Salesforce may
have committed it). Writing such a record again with the same values changes nothing but
its LastModifiedDate and costs a call; a read of the records first (one SOQL query for a
batch) tells which already hold every value ilyd would write.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from ilyd.enrich.fields import LAST_ENRICHED
from ilyd.salesforce.rest import RestClient
from ilyd.salesforce.soql import identifier, quote

# Changes on every write by design: a write that would change nothing else is a no-op.
_ALWAYS_NEW = frozenset({LAST_ENRICHED.api_name})


def _same(current: object, wanted: object) -> bool:
    if current in (None, "") and wanted in (None, ""):
        return True
    if isinstance(wanted, bool) or isinstance(current, bool):
        return current == wanted
    if isinstance(wanted, int | float) and isinstance(current, int | float | str):
        try:
            return math.isclose(float(current), float(wanted), rel_tol=1e-9, abs_tol=1e-9)
        except ValueError:
            return False
    return current == wanted


def read_current(rest: RestClient, sobject: str, record_ids: Sequence[str],
                 names: Iterable[str], scope: str | None = None) -> dict[str, Mapping[str, Any]]:
    """The current values of `names` of those records, by 15-character Id: one SOQL
    query for a batch (the writer's policy checks and the landed check share it).
    `scope`: the org's condition for the object (ilyd.pipeline.scope), ANDed to the
    WHERE: a record outside it is not returned."""
    query = current_query(sobject, record_ids, names, scope)
    return by_short_id(rest.query(query)) if query else {}


def current_query(sobject: str, record_ids: Sequence[str], names: Iterable[str],
                  scope: str | None = None) -> str | None:
    """The SOQL `read_current` sends, None when there is nothing to read."""
    if not record_ids:
        return None
    head, fields = _select_head(sobject, names if isinstance(names, frozenset)
                                else frozenset(names))
    if not (fields or scope):
        return None
    # The ids are quoted by `quote`, as `soql` quotes them.
    query = head + quote(list(record_ids))
    if scope:
        # The admin's condition, already in parentheses, is appended after the ids:
        # nothing is put into it.
        query += f" AND {scope}"
    return query


# A writer reads the same few sets of fields of the same objects on every flush.
@lru_cache(maxsize=256)
def _select_head(sobject: str, names: frozenset[str]) -> tuple[str, bool]:
    """("SELECT Id, <names> FROM <sobject> WHERE Id IN ", whether `names` holds a field
    other than Id)."""
    wanted = sorted(names - {"Id"})
    # Names pass `identifier` (API-name grammar).
    select = ", ".join(identifier(n) for n in ("Id", *wanted))
    return f"SELECT {select} FROM {identifier(sobject)} WHERE Id IN ", bool(wanted)  # noqa: S608


def by_short_id(rows: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Rows by their 15-character Id, as `read_current` answers."""
    return {str(r["Id"])[:15]: r for r in rows}


def landed(rows: Mapping[str, Mapping[str, Any]],
           wanted: Sequence[tuple[str, Mapping[str, Any]]]) -> set[str]:
    """The ids among `wanted` (record id, values to write) whose row in `rows` (by
    15-character Id, from `read_current`) holds every one of those values (LAST_ENRICHED
    aside)."""
    done = set()
    for record_id, values in wanted:
        row = rows.get(record_id[:15])
        if row is not None and all(_same(row.get(n), v) for n, v in values.items()
                                   if n not in _ALWAYS_NEW):
            done.add(record_id)
    return done


def wanted_names(wanted: Sequence[tuple[str, Mapping[str, Any]]]) -> set[str]:
    """The fields `landed` needs read for `wanted`."""
    return {n for _, values in wanted for n in values if n not in _ALWAYS_NEW}


def already_written(rest: RestClient, sobject: str,
                    wanted: Sequence[tuple[str, Mapping[str, Any]]]) -> set[str]:
    """The ids among `wanted` (record id, values to write) whose record already holds
    every one of those values (LAST_ENRICHED aside)."""
    names = wanted_names(wanted)
    if not names or not wanted:
        return set()
    return landed(read_current(rest, sobject, [i for i, _ in wanted], names), wanted)
