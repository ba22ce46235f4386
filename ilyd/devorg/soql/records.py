"""Reading values through parent relationships and shaping output records."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ilyd.devorg.soql.binder import Hop, Resolved
from ilyd.devorg.soql.schema import DataSource

Row = Mapping[str, object]
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
# Parent rows kept per query; many children share few parents (owners, profiles), and
# the bound keeps a million-row scan with distinct parents from growing without limit.
_CACHE_LIMIT = 50_000


def id18(value: str) -> str:
    """The 18-character form of a 15- or 18-character id (case-safety suffix appended)."""
    if len(value) != 15:
        return value
    suffix = ""
    for chunk in range(3):
        bits = 0
        for i, char in enumerate(value[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << i
        suffix += _SUFFIX[bits]
    return value + suffix


class Parents:
    """Looks parents up with ``DataSource.get``, remembering them for the query's duration."""

    def __init__(self, source: DataSource) -> None:
        self.source = source
        self._cache: dict[tuple[tuple[str, ...], str], tuple[str, Row] | None] = {}

    def get(self, targets: tuple[str, ...], record_id: object) -> tuple[str, Row] | None:
        """(sobject, row) of the parent ``record_id`` among ``targets``, or None."""
        if not isinstance(record_id, str) or len(record_id) not in (15, 18):
            return None
        key = (targets, record_id)
        try:
            return self._cache[key]
        except KeyError:
            pass
        found = None
        full = id18(record_id)
        for sobject in targets:
            row = self.source.get(sobject, full)
            if row is not None:
                found = (sobject, row)
                break
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = found
        return found


def make_getter(field: Resolved, parents: Parents) -> Callable[[Row], object]:
    """A function reading ``field`` (through its parent hops) from a row."""
    name = field.info.name
    if not field.hops:
        return lambda row: row.get(name)
    hops = field.hops

    def get(row: Row) -> object:
        current: Row | None = row
        for hop in hops:
            found = parents.get(hop.targets, current.get(hop.reference_field))  # type: ignore[union-attr]
            if found is None:
                return None
            current = found[1]
        return current.get(name)  # type: ignore[union-attr]

    return get


@dataclass
class Shape:
    """The output layout of one object level: its fields and nested parents, in SELECT order."""

    fields: dict[str, str] = field(default_factory=dict)  # lower key -> canonical field name
    parents: dict[str, tuple[Hop, Shape]] = field(default_factory=dict)  # lower rel -> …
    order: list[tuple[bool, str]] = field(default_factory=list)  # (is_parent, lower key)

    def add(self, resolved: Resolved, depth: int = 0) -> None:
        """Place ``resolved`` (from hop ``depth`` on) into this layout."""
        if depth == len(resolved.hops):
            key = resolved.info.name.lower()
            if key not in self.fields:
                self.fields[key] = resolved.info.name
                self.order.append((False, key))
            return
        hop = resolved.hops[depth]
        key = hop.relationship.lower()
        if key not in self.parents:
            self.parents[key] = (hop, Shape())
            self.order.append((True, key))
        self.parents[key][1].add(resolved, depth + 1)

    def build(self, sobject: str, row: Row, parents: Parents) -> dict:
        """The REST-shaped record for ``row``; a missing parent becomes None."""
        out: dict[str, object] = {"attributes": {"type": sobject}}
        for is_parent, key in self.order:
            if not is_parent:
                name = self.fields[key]
                out[name] = row.get(name)
                continue
            hop, child = self.parents[key]
            found = parents.get(hop.targets, row.get(hop.reference_field))
            out[hop.relationship] = None if found is None else child.build(
                found[0], found[1], parents
            )
        return out
