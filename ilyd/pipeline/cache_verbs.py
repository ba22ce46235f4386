"""Server side of `ilyd ctl cache stats | clear [--domain D] | show --domain D`: the
daemon's provider cache. `show` explains a company's cached answers: each provider's
values and the evidence behind them (for DNS, the record behind each product).

The cache is the one the orgs' providers use (`ilyd.pipeline.providers`); before any org
opened it, the verbs open the state database's cache table themselves, so stored entries
are still shown and cleared (hits and misses are then zero: they count since start).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import structlog

from ilyd.control.protocol import DaemonView, Progress, Verb
from ilyd.enrich.domain import extract_domain
from ilyd.errors import ControlError
from ilyd.pipeline.providers import find_registry
from ilyd.store.cache import ProviderCache
from ilyd.store.db import Database

log = structlog.get_logger(__name__)

ACTIONS = ("stats", "clear", "show")


@contextmanager
def _cache(daemon: DaemonView) -> Iterator[ProviderCache]:
    path = daemon.database_path
    registry = find_registry(path)
    if registry is not None and registry.cache is not None:
        yield registry.cache
        return
    database = Database(path)
    try:
        yield ProviderCache(database)
    finally:
        database.close()


def _domain(args: Mapping[str, Any]) -> str | None:
    raw = args.get("domain")
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw.strip():
        raise ControlError("invalid_args", "domain must be a non-empty string")
    # Entries are keyed by registrable domain: accept what an admin pastes (a URL, www.).
    result = extract_domain(raw)
    if result.domain is None:
        raise ControlError("invalid_args", f"{raw!r} is not a company domain",
                           "give the registrable domain, e.g. --domain example.com")
    return result.domain


def cache(daemon: DaemonView, args: Mapping[str, Any], _progress: Progress) -> dict[str, Any]:
    """`action` stats: entries and hits/misses per provider; clear: forget entries
    (all, or those of `domain`)."""
    action = args.get("action", "stats")
    if action not in ACTIONS:
        raise ControlError("invalid_args", f"unknown cache action {action!r}",
                           "ilyd ctl cache stats | clear [--domain D] | show --domain D")
    with _cache(daemon) as provider_cache:
        if action == "clear":
            domain = _domain(args)
            removed = provider_cache.clear(domain)
            log.info("control_cache_clear", domain=domain, removed=removed)
            return {"action": "clear", "domain": domain, "removed": removed}
        if action == "show":
            domain = _domain(args)
            if domain is None:
                raise ControlError("invalid_args", "show needs a domain",
                                   "ilyd ctl cache show --domain example.com")
            answers = cached_answers(provider_cache, domain)
            log.info("control_cache_show", domain=domain, answers=len(answers))
            return {"action": "show", "domain": domain, "answers": answers}
        stats = provider_cache.stats()
        return {"action": "stats", **asdict(stats),
                "providers": [asdict(p) for p in stats.providers]}


def cached_answers(provider_cache: ProviderCache, domain: str) -> list[dict[str, Any]]:
    """Every provider's unexpired cached answer for `domain`, with its evidence."""
    answers = []
    for provider in provider_cache.stats().providers:
        lookup = provider_cache.get(provider.provider, domain)
        if lookup is None:
            continue
        answers.append({"provider": lookup.provider, "found": lookup.found,
                        "invalid": lookup.invalid, "values": dict(lookup.values),
                        "evidence": lookup.evidence})
    return answers


# Not audited as mutating: `stats` is read-only; `clear` logs what it removed.
VERBS: tuple[Verb, ...] = (Verb("cache", cache),)
