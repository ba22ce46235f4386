"""ORDER BY as one sort key usable by ``sorted`` and ``heapq.nsmallest``.

Salesforce sorts nulls first for ASC and last for DESC unless NULLS FIRST/LAST says
otherwise; text sorts case-insensitively, ids by their exact characters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

Row = Mapping[str, object]


class _Reverse:
    """Inverts the order of a value so a DESC key can share one ascending tuple sort."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reverse) and self.value == other.value

    def __lt__(self, other: _Reverse) -> bool:
        return other.value < self.value  # type: ignore[operator]

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class SortKey:
    """One ORDER BY key bound to a value reader."""

    value: Callable[[Row], object]  # already normalised for sorting
    descending: bool
    nulls_last: bool


def make_key(keys: list[SortKey]) -> Callable[[Row], tuple]:
    """A key function: tuples of (null rank, value) per ORDER BY key."""
    parts = [
        (k.value, k.descending, 2 if k.nulls_last else 0) for k in keys
    ]

    def key(row: Row) -> tuple:
        out = []
        for value, descending, null_rank in parts:
            current = value(row)
            if current is None:
                out.append((null_rank, None))
            else:
                out.append((1, _Reverse(current) if descending else current))
        return tuple(out)

    return key
