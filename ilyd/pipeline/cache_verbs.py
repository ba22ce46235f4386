"""Server side of `ilyd ctl cache stats | clear [--domain D]`: the daemon's provider cache.

The cache is the one the orgs' providers use (`ilyd.pipeline.providers`); before any org
opened it, the verbs open the state database's cache table themselves, so stored entries
are still shown and cleared (hits and misses are then zero: they count since start).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import structlog

from ilyd.control import Progress
from ilyd.enrich.domain import extract_domain
from ilyd.errors import ControlError
from ilyd.pipeline.providers import find_registry
from ilyd.store.cache import ProviderCache
from ilyd.store.db import Database

if TYPE_CHECKING:
    from ilyd.daemon import Daemon

log = structlog.get_logger(__name__)

ACTIONS = ("stats", "clear")


@contextmanager
def _cache(daemon: Daemon) -> Iterator[ProviderCache]:
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


def cache(daemon: Daemon, args: Mapping[str, Any], _progress: Progress) -> dict[str, Any]:
    """`action` stats: entries and hits/misses per provider; clear: forget entries
    (all, or those of `domain`)."""
    action = args.get("action", "stats")
    if action not in ACTIONS:
        raise ControlError("invalid_args", f"unknown cache action {action!r}",
                           "ilyd ctl cache stats | ilyd ctl cache clear [--domain D]")
    with _cache(daemon) as provider_cache:
        if action == "clear":
            domain = _domain(args)
            removed = provider_cache.clear(domain)
            log.info("control_cache_clear", domain=domain, removed=removed)
            return {"action": "clear", "domain": domain, "removed": removed}
        stats = provider_cache.stats()
        return {"action": "stats", **asdict(stats),
                "providers": [asdict(p) for p in stats.providers]}
