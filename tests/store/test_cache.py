"""The provider cache on a real SQLite file: TTLs, stats, clearing, in-flight de-duplication."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping

import pytest

from ilyd.enrich.provider import Lookup, Provider
from ilyd.errors import ProviderError
from ilyd.metrics import REGISTRY
from ilyd.store import Database
from ilyd.store.cache import CachedProvider, CacheSettings, ProviderCache


class Clock:
    """A clock the test moves by hand (TTL expiry without sleeping)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class TableProvider:
    """A provider answering from a dict; can hold every lookup until released."""

    def __init__(self, name: str, table: Mapping[str, Mapping[str, object]]) -> None:
        self.name = name
        self.table = table
        self.calls: list[str] = []
        self.batches: list[list[str]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.fail_with: ProviderError | None = None
        self._lock = threading.Lock()

    def lookup(self, domain: str) -> Lookup:
        with self._lock:
            self.calls.append(domain)
        self.started.set()
        assert self.release.wait(10)
        if self.fail_with is not None:
            raise self.fail_with
        values = self.table.get(domain)
        if domain.startswith("nx"):
            return Lookup(self.name, domain, found=False, invalid=True)
        return Lookup(self.name, domain, found=values is not None, values=values or {},
                      evidence="table" if values else None)

    def lookup_many(self, domains: Iterable[str]) -> Mapping[str, Lookup | ProviderError]:
        domains = list(domains)
        self.batches.append(domains)
        return {d: self.lookup(d) for d in domains}

    def close(self) -> None:
        pass


ACME = {"Ily_Company_Name__c": "Acme Corp", "Ily_Employee_Count__c": 240}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(db, clock) -> ProviderCache:
    return ProviderCache(db, clock=clock)


@pytest.fixture
def table() -> TableProvider:
    return TableProvider("vendor", {"acme.test": ACME})


@pytest.fixture
def cached(table, cache) -> CachedProvider:
    return CachedProvider(table, cache, CacheSettings(positive_ttl_seconds=100,
                                                      negative_ttl_seconds=10))


def test_cached_provider_satisfies_the_provider_contract(cached):
    assert isinstance(cached, Provider)


def test_a_second_lookup_is_answered_from_the_cache(cached, table):
    first = cached.lookup("acme.test")
    second = cached.lookup("acme.test")
    assert first == second == Lookup("vendor", "acme.test", True, ACME, "table")
    assert table.calls == ["acme.test"]


def test_the_cache_survives_a_restart_on_the_same_file(tmp_path, clock, table):
    db = Database(tmp_path / "state.db")
    CachedProvider(table, ProviderCache(db, clock=clock)).lookup("acme.test")
    db.close()
    reopened = Database(tmp_path / "state.db")
    again = TableProvider("vendor", {})
    assert CachedProvider(again, ProviderCache(reopened, clock=clock)).lookup("acme.test").found
    assert again.calls == []
    reopened.close()


def test_positive_answers_expire_after_the_positive_ttl(cached, table, clock):
    cached.lookup("acme.test")
    clock.now += 99
    cached.lookup("acme.test")
    assert table.calls == ["acme.test"]
    clock.now += 2
    cached.lookup("acme.test")
    assert table.calls == ["acme.test", "acme.test"]


def test_not_found_and_invalid_expire_after_the_negative_ttl(cached, table, clock):
    assert cached.lookup("nobody.test").found is False
    assert cached.lookup("nxdomain.test").invalid is True
    assert cached.lookup("nxdomain.test").invalid is True
    clock.now += 11
    cached.lookup("nobody.test")
    cached.lookup("nxdomain.test")
    assert table.calls == ["nobody.test", "nxdomain.test", "nobody.test", "nxdomain.test"]


def test_errors_are_never_cached(cached, table):
    table.fail_with = ProviderError("down", retryable=True, reason="server")
    with pytest.raises(ProviderError):
        cached.lookup("acme.test")
    table.fail_with = None
    assert cached.lookup("acme.test").found
    assert table.calls == ["acme.test", "acme.test"]


def test_entries_are_kept_per_provider(cache, table):
    other = TableProvider("dns", {"acme.test": {"Ily_DNS_Provider__c": "Cloudflare DNS"}})
    CachedProvider(table, cache).lookup("acme.test")
    dns_answer = CachedProvider(other, cache).lookup("acme.test")
    assert dns_answer.values == {"Ily_DNS_Provider__c": "Cloudflare DNS"}
    assert len(other.calls) == 1


def ask_while_held(table: TableProvider, ask: Callable[[], None], callers: int) -> None:
    """Run `ask` on `callers` threads while the provider holds the first lookup, then let
    it answer and wait for every caller."""
    table.release.clear()
    threads = [threading.Thread(target=ask) for _ in range(callers)]
    for t in threads:
        t.start()
    assert table.started.wait(10)
    table.release.set()
    for t in threads:
        t.join(10)


def test_many_concurrent_callers_share_one_lookup(cached, table):
    results: list[Lookup] = []
    lock = threading.Lock()

    def ask() -> None:
        answer = cached.lookup("acme.test")
        with lock:
            results.append(answer)

    ask_while_held(table, ask, 20)
    assert len(results) == 20
    assert all(r.values == ACME for r in results)
    assert table.calls == ["acme.test"]


def test_concurrent_callers_all_see_the_in_flight_error(cached, table):
    table.fail_with = ProviderError("vendor down", retryable=True, reason="server")
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            cached.lookup("acme.test")
        except ProviderError as exc:
            errors.append(exc)

    ask_while_held(table, ask, 5)
    assert len(errors) == 5
    assert len(table.calls) <= 5  # late arrivals may ask again: errors are not cached
    assert all(str(e) == "vendor down" for e in errors)


def test_lookup_many_asks_the_provider_once_for_only_the_misses(cached, table):
    cached.lookup("acme.test")
    results = cached.lookup_many(["acme.test", "globex.test", "globex.test", "initech.test"])
    assert set(results) == {"acme.test", "globex.test", "initech.test"}
    assert table.batches == [["globex.test", "initech.test"]]
    assert results["acme.test"].found
    assert not results["globex.test"].found


def test_stats_count_entries_hits_and_misses_per_provider(cached, cache, clock):
    hits_before = REGISTRY.get_sample_value("ilyd_cache_hits_total")
    misses_before = REGISTRY.get_sample_value("ilyd_cache_misses_total")
    cached.lookup("acme.test")
    cached.lookup("acme.test")
    cached.lookup("nobody.test")
    clock.now += 50  # the negative entry (TTL 10) is now expired
    stats = cache.stats()
    assert (stats.entries, stats.hits, stats.misses) == (2, 1, 2)
    (vendor,) = stats.providers
    assert (vendor.provider, vendor.positive, vendor.negative, vendor.expired) == (
        "vendor", 1, 0, 1)
    assert REGISTRY.get_sample_value("ilyd_cache_hits_total") - hits_before == 1
    assert REGISTRY.get_sample_value("ilyd_cache_misses_total") - misses_before == 2


def test_clear_one_domain_then_everything(cached, cache, table):
    for domain in ("acme.test", "globex.test", "initech.test"):
        cached.lookup(domain)
    assert cache.clear("ACME.test") == 1
    cached.lookup("acme.test")
    assert table.calls.count("acme.test") == 2
    assert cache.clear() == 3
    assert cache.stats().entries == 0


def test_purge_expired_removes_only_expired_entries(cached, cache, clock):
    cached.lookup("acme.test")
    cached.lookup("nobody.test")
    clock.now += 50
    assert cache.purge_expired() == 1
    assert cache.get("vendor", "acme.test") is not None
