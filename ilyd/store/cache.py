"""The provider cache: what each provider said about each domain, kept in the state DB.

Many records share a company domain and vendors bill per lookup, so a provider is asked
about a domain once per TTL: answers with values live for the provider's positive TTL,
"not found" and "no such domain" for its negative TTL. Errors are never cached. While a
lookup is in flight every other caller asking for the same (provider, domain) waits for
that one answer instead of sending its own.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass

import structlog

from ilyd.enrich.provider import Lookup, Provider
from ilyd.enrich.provider_health import HEALTHY, ProviderHealth
from ilyd.errors import ProviderError, StoreError
from ilyd.metrics import CACHE_HITS, CACHE_MISSES
from ilyd.store.db import Database

log = structlog.get_logger(__name__)

_SCHEMA = [
    "CREATE TABLE provider_cache ("
    " provider TEXT NOT NULL, domain TEXT NOT NULL, found INTEGER NOT NULL,"
    " invalid INTEGER NOT NULL, vals TEXT NOT NULL, evidence TEXT,"
    " stored_at REAL NOT NULL, expires_at REAL NOT NULL,"
    " PRIMARY KEY (provider, domain));"
    "CREATE INDEX provider_cache_domain ON provider_cache (domain)",
]

_DAY = 86400.0


@dataclass(frozen=True)
class CacheSettings:
    """TTLs for one provider's answers: values, and not-found / invalid domain."""

    positive_ttl_seconds: float = 30 * _DAY
    negative_ttl_seconds: float = 7 * _DAY


@dataclass(frozen=True)
class ProviderCacheStats:
    """One provider's share of the cache."""

    provider: str
    entries: int
    positive: int
    negative: int
    expired: int
    hits: int
    misses: int


@dataclass(frozen=True)
class CacheStats:
    """The cache as `ilyd ctl cache stats` shows it (hits/misses since start)."""

    entries: int
    hits: int
    misses: int
    providers: tuple[ProviderCacheStats, ...]


class ProviderCache:
    """Lookups by (provider, domain) in the state database, with expiry. Thread-safe."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock
        self._lock = threading.Lock()
        self._hits: dict[str, int] = {}
        self._misses: dict[str, int] = {}
        db.migrate("provider_cache", _SCHEMA)

    def get(self, provider: str, domain: str) -> Lookup | None:
        """The unexpired cached lookup, or None."""
        row = self._db.connection().execute(
            "SELECT found, invalid, vals, evidence FROM provider_cache"
            " WHERE provider = ? AND domain = ? AND expires_at > ?",
            (provider, domain, self._clock()),
        ).fetchone()
        if row is None:
            return None
        return Lookup(
            provider=provider, domain=domain, found=bool(row["found"]),
            values=json.loads(row["vals"]), evidence=row["evidence"],
            invalid=bool(row["invalid"]),
        )

    def put(self, lookup: Lookup, ttl_seconds: float) -> None:
        """Store a lookup for `ttl_seconds` (replacing what was there)."""
        if ttl_seconds <= 0:
            return
        now = self._clock()
        try:
            vals = json.dumps(dict(lookup.values), sort_keys=True)
        except TypeError as exc:
            raise StoreError(
                f"cannot cache {lookup.provider}'s answer for {lookup.domain}: a value is not"
                f" plain JSON ({exc}); providers must return str, int, float, bool or None"
            ) from exc
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO provider_cache"
                " (provider, domain, found, invalid, vals, evidence, stored_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (lookup.provider, lookup.domain, int(lookup.found), int(lookup.invalid),
                 vals, lookup.evidence, now, now + ttl_seconds),
            )

    def clear(self, domain: str | None = None) -> int:
        """Forget every cached lookup, or those for one domain; returns how many."""
        with self._db.transaction() as conn:
            if domain is None:
                cur = conn.execute("DELETE FROM provider_cache")
            else:
                cur = conn.execute("DELETE FROM provider_cache WHERE domain = ?",
                                   (domain.strip().lower(),))
        log.info("provider_cache_cleared", domain=domain, removed=cur.rowcount)
        return cur.rowcount

    def purge_expired(self) -> int:
        """Delete expired entries; returns how many."""
        with self._db.transaction() as conn:
            cur = conn.execute("DELETE FROM provider_cache WHERE expires_at <= ?",
                               (self._clock(),))
        return cur.rowcount

    def record(self, provider: str, *, hit: bool) -> None:
        """Count a hit or a miss for `provider` (in stats and metrics)."""
        with self._lock:
            counts = self._hits if hit else self._misses
            counts[provider] = counts.get(provider, 0) + 1
        (CACHE_HITS if hit else CACHE_MISSES).inc()

    def stats(self) -> CacheStats:
        """Entries per provider (positive, negative, expired) and hits/misses since start."""
        rows = self._db.connection().execute(
            "SELECT provider, COUNT(*) AS entries,"
            " SUM(CASE WHEN expires_at > :now AND found = 1 THEN 1 ELSE 0 END) AS positive,"
            " SUM(CASE WHEN expires_at > :now AND found = 0 THEN 1 ELSE 0 END) AS negative,"
            " SUM(CASE WHEN expires_at <= :now THEN 1 ELSE 0 END) AS expired"
            " FROM provider_cache GROUP BY provider",
            {"now": self._clock()},
        ).fetchall()
        stored = {row["provider"]: row for row in rows}
        with self._lock:
            hits, misses = dict(self._hits), dict(self._misses)
        providers = tuple(
            ProviderCacheStats(
                provider=name,
                entries=stored[name]["entries"] if name in stored else 0,
                positive=stored[name]["positive"] if name in stored else 0,
                negative=stored[name]["negative"] if name in stored else 0,
                expired=stored[name]["expired"] if name in stored else 0,
                hits=hits.get(name, 0), misses=misses.get(name, 0),
            )
            for name in sorted(set(stored) | set(hits) | set(misses))
        )
        return CacheStats(
            entries=sum(p.entries for p in providers), hits=sum(hits.values()),
            misses=sum(misses.values()), providers=providers,
        )


class CachedProvider:
    """A provider behind the cache, asked at most once at a time per domain. Thread-safe."""

    def __init__(self, provider: Provider, cache: ProviderCache,
                 settings: CacheSettings | None = None) -> None:
        self.provider = provider
        self.name = provider.name
        self.settings = settings or CacheSettings()
        self._cache = cache
        self._lock = threading.Lock()
        self._inflight: dict[str, Future[Lookup]] = {}

    @property
    def health(self) -> ProviderHealth:
        """The wrapped provider's health."""
        return getattr(self.provider, "health", HEALTHY)

    def lookup(self, domain: str) -> Lookup:
        """The cached answer, the answer of a lookup already in flight, or a fresh one."""
        cached = self._cache.get(self.name, domain)
        if cached is not None:
            self._cache.record(self.name, hit=True)
            return cached
        future, leader = self._claim(domain)
        if not leader:
            self._cache.record(self.name, hit=True)
            return future.result()
        try:
            # Another leader may have finished between our read and our claim.
            cached = self._cache.get(self.name, domain)
            if cached is not None:
                self._cache.record(self.name, hit=True)
                result = cached
            else:
                self._cache.record(self.name, hit=False)
                result = self.provider.lookup(domain)
                self._store(result)
        except BaseException as exc:
            self._settle(domain, future, exc)
            raise
        self._settle(domain, future, result)
        return result

    def lookup_many(self, domains: Iterable[str]) -> Mapping[str, Lookup | ProviderError]:
        """Answer from the cache where possible and ask the provider for the rest at once."""
        results: dict[str, Lookup | ProviderError] = {}
        led: dict[str, Future[Lookup]] = {}
        joined: dict[str, Future[Lookup]] = {}
        for domain in dict.fromkeys(domains):
            cached = self._cache.get(self.name, domain)
            if cached is not None:
                self._cache.record(self.name, hit=True)
                results[domain] = cached
                continue
            future, leader = self._claim(domain)
            (led if leader else joined)[domain] = future
            self._cache.record(self.name, hit=not leader)
        if led:
            try:
                answers = self.provider.lookup_many(list(led))
            except BaseException as exc:
                for domain, future in led.items():
                    self._settle(domain, future, exc)
                raise
            for domain, future in led.items():
                answer = answers.get(domain) or ProviderError(
                    f"provider {self.name!r} returned no answer for {domain} in a batch",
                    retryable=True, reason="bad_response")
                if isinstance(answer, Lookup):
                    self._store(answer)
                self._settle(domain, future, answer)
                results[domain] = answer
        for domain, future in joined.items():
            try:
                results[domain] = future.result()
            except ProviderError as exc:
                results[domain] = exc
        return results

    def close(self) -> None:
        """Close the wrapped provider."""
        self.provider.close()

    def _claim(self, domain: str) -> tuple[Future[Lookup], bool]:
        with self._lock:
            future = self._inflight.get(domain)
            if future is not None:
                return future, False
            future = Future()
            self._inflight[domain] = future
            return future, True

    def _settle(self, domain: str, future: Future[Lookup],
                outcome: Lookup | BaseException) -> None:
        with self._lock:
            self._inflight.pop(domain, None)
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

    def _store(self, lookup: Lookup) -> None:
        ttl = (self.settings.positive_ttl_seconds if lookup.found
               else self.settings.negative_ttl_seconds)
        self._cache.put(lookup, ttl)
