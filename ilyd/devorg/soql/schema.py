"""What the evaluator needs from its host: field metadata, records, and the result shape."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class FieldInfo:
    """One field as describe shows it to the querying user."""

    name: str  # canonical case: "Website"
    type: str  # describe type: id string textarea url email phone picklist boolean int double
    #            currency percent date datetime reference (multipicklist for INCLUDES)
    reference_to: tuple[str, ...] = ()  # parents of a reference field
    relationship_name: str | None = None  # "Profile" for ProfileId
    filterable: bool = True
    sortable: bool = True


class Schema(Protocol):
    """The objects and fields visible to the querying user."""

    def sobject(self, name: str) -> str | None:
        """Canonical name of the object called ``name`` (case-insensitive), or None."""
        ...

    def fields(self, sobject: str) -> Mapping[str, FieldInfo]:
        """The fields the user can read, keyed by lower-case name."""
        ...


class DataSource(Protocol):
    """Record storage. Rows are mappings keyed by canonical field names."""

    def scan(self, sobject: str) -> Iterable[Mapping[str, object]]:
        """Every record of ``sobject`` (deleted ones carry IsDeleted=True)."""
        ...

    def get(self, sobject: str, record_id: str) -> Mapping[str, object] | None:
        """The live record with this 18-character id, or None."""
        ...


@dataclass
class QueryResult:
    """A query's answer. ``records`` is lazy; ``total_size`` is computed on first read.

    For a query without ORDER BY, reading ``total_size`` costs one counting pass over the
    source (memory stays flat); with ORDER BY the sorted rows are kept once and shared
    with ``records``. COUNT() queries have no records and ``total_size`` = the count.
    """

    records: Iterator[dict]
    columns: tuple[str, ...]
    _count: Callable[[], int] = field(repr=False)
    _total: int | None = field(default=None, init=False, repr=False)

    @property
    def total_size(self) -> int:
        """Number of records the query returns (after LIMIT/OFFSET), or the COUNT()."""
        if self._total is None:
            self._total = self._count()
        return self._total
