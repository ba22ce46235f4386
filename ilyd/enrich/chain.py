"""Providers in order: per Ily field, the first provider with a value wins.

An org lists its providers in order of trust (say a vendor's HTTP API, then live DNS).
The chain asks each in turn and keeps, for every field, the first value it gets, and
records which provider supplied it (`sources`, and `provider` naming every contributor,
for the Source field).

Failures, decided so that no record is lost and none is mislabelled:
- a retryable failure of any provider stops the chain and is raised: the fields that
  provider would have won must not be filled by a lesser one, so the record waits;
- a provider that is FAILING (bad credentials, no credits) or that rejected this domain
  outright is skipped and the others answer;
- when no provider could answer at all because some are FAILING, the record waits
  (retryable) until an admin fixes them, rather than being written as "not found".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ilyd.enrich.provider import Lookup, Provider, lookup_each
from ilyd.enrich.provider_health import HEALTHY, HealthState, ProviderHealth
from ilyd.errors import ConfigError, ProviderError

# Separates the names of contributing providers in `ChainLookup.provider`.
SOURCE_SEPARATOR = ", "


@dataclass(frozen=True)
class ChainLookup(Lookup):
    """A merged lookup. `sources` maps each Ily field to the provider that supplied it;
    `skipped` maps a provider that could not answer to why."""

    sources: Mapping[str, str] = field(default_factory=dict)
    skipped: Mapping[str, str] = field(default_factory=dict)


class ProviderChain:
    """Asks providers in order and merges their answers field by field. Thread-safe."""

    def __init__(self, providers: Sequence[Provider], name: str = "chain") -> None:
        if not providers:
            raise ConfigError("an enrichment chain needs at least one provider")
        names = [p.name for p in providers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"provider names must be unique in a chain: {duplicates}")
        self.name = name
        self.providers = tuple(providers)

    @property
    def health(self) -> ProviderHealth:
        """FAILING only when every provider is failing (the chain can answer nothing)."""
        states = [getattr(p, "health", HEALTHY) for p in self.providers]
        if any(h.ok for h in states):
            return HEALTHY
        return ProviderHealth(HealthState.FAILING,
                              "; ".join(h.message or "failing" for h in states))

    def lookup(self, domain: str) -> ChainLookup:
        """Ask each provider in order and merge; raise ProviderError as described above."""
        answers: list[Lookup] = []
        skipped: dict[str, str] = {}
        unavailable = False
        last_rejection: ProviderError | None = None
        for provider in self.providers:
            health: ProviderHealth = getattr(provider, "health", HEALTHY)
            if not health.ok:
                skipped[provider.name] = health.message or "failing"
                unavailable = True
                continue
            try:
                answers.append(provider.lookup(domain))
            except ProviderError as exc:
                if exc.retryable:
                    raise
                skipped[provider.name] = str(exc)
                if exc.reason in ("auth", "failing"):
                    unavailable = True
                else:
                    last_rejection = exc
        if not answers:
            if unavailable:
                raise ProviderError(
                    f"no enrichment provider can answer for {domain}: "
                    + "; ".join(f"{n}: {why}" for n, why in skipped.items()),
                    retryable=True, reason="unavailable",
                )
            if last_rejection is not None:
                raise last_rejection
        return merge(domain, answers, skipped)

    def lookup_many(self, domains: Iterable[str]) -> Mapping[str, Lookup | ProviderError]:
        """Look each domain up through the chain."""
        return lookup_each(self.lookup, domains)

    def close(self) -> None:
        """Close every provider."""
        for provider in self.providers:
            provider.close()


def merge(domain: str, answers: Sequence[Lookup], skipped: Mapping[str, str]) -> ChainLookup:
    """Merge lookups in order of precedence: per field, the first value wins."""
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    for answer in answers:
        for name, value in answer.values.items():
            if value is not None and value != "" and name not in values:
                values[name] = value
                sources[name] = answer.provider
    contributors = list(dict.fromkeys(sources.values()))
    evidence = "\n".join(
        f"{a.provider}: {a.evidence}" for a in answers
        if a.evidence and a.provider in contributors
    )
    found = bool(values)
    return ChainLookup(
        provider=SOURCE_SEPARATOR.join(contributors),
        domain=domain,
        found=found,
        values=values,
        evidence=evidence or None,
        invalid=not found and any(a.invalid for a in answers),
        sources=sources,
        skipped=dict(skipped),
    )
