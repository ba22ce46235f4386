"""The provider contract: a domain in, Ily field values (or not-found) out.

Every enrichment source (the bundled dataset, a vendor's HTTP API, live DNS) implements
`Provider`. Values are keyed by Ily field API names (`Ily_Company_Name__c`, see
`ilyd.enrich.fields`). Failures are `ProviderError` with `retryable` set: a retryable
failure leaves the record waiting in the inbox; a non-retryable one is recorded with its
reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from ilyd.errors import ProviderError

__all__ = ["Lookup", "MatchStatus", "Provider", "ProviderError", "lookup_each"]


class MatchStatus(StrEnum):
    """Values of the `Ily_Match_Status__c` picklist."""

    MATCHED = "Matched"
    NOT_FOUND = "Not Found"
    FREE_EMAIL = "Free Email"
    INVALID_DOMAIN = "Invalid Domain"
    ERROR = "Error"


@dataclass(frozen=True)
class Lookup:
    """What one provider knows about one registrable domain.

    `found` is False for a definite "no such company" (cacheable negatively).
    `invalid` is True when the provider proved the domain does not exist (e.g. NXDOMAIN).
    `values` maps Ily field API names to plain values (str, int, float, None).
    `evidence` says, for humans, what the values rest on (e.g. the DNS records matched).
    """

    provider: str
    domain: str
    found: bool
    values: Mapping[str, object] = field(default_factory=dict)
    evidence: str | None = None
    invalid: bool = False


@runtime_checkable
class Provider(Protocol):
    """An enrichment source. Implementations must be safe to call from many threads."""

    name: str

    def lookup(self, domain: str) -> Lookup:
        """Look one registrable domain up; raise `ProviderError` on failure."""
        ...

    def lookup_many(self, domains: Iterable[str]) -> Mapping[str, Lookup | ProviderError]:
        """Look several domains up (a batch endpoint where the source has one)."""
        ...

    def close(self) -> None:
        """Release sockets, files and threads."""
        ...


def lookup_each(
    lookup: Callable[[str], Lookup], domains: Iterable[str]
) -> dict[str, Lookup | ProviderError]:
    """`lookup_many` for a source without a batch form: one `lookup` per distinct domain,
    each failure kept as that domain's answer."""
    results: dict[str, Lookup | ProviderError] = {}
    for domain in dict.fromkeys(domains):
        try:
            results[domain] = lookup(domain)
        except ProviderError as exc:
            results[domain] = exc
    return results
