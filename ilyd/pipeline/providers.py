"""The daemon's enrichment providers: built from the config, cached, shared across orgs.

Every org names its providers in `[…enrich]`; two orgs naming the same provider with the
same settings (and the same secret) share one instance, so rate limits, connection pools
and — most of all — the cache's in-flight de-duplication are process-wide: a hundred orgs
seeing the same company at once cause one vendor request. Each instance sits behind a
`CachedProvider` over one `ProviderCache` per state database (the daemon has one).

An org takes a handle per provider when its pipeline starts (`chain_for`) and closes
the handles when it stops; the instance is closed when its last handle is. A changed
setting or a rotated secret gives a different key, hence a fresh instance — which is also
how a provider marked FAILING (HTTP 401/403) recovers once its key is fixed and the org
restarted.
"""

from __future__ import annotations

import hashlib
import json
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, is_dataclass, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import structlog

from ilyd.config.enrich import EnrichConfig, ProviderSpec
from ilyd.config.schema import is_loopback_host
from ilyd.enrich.chain import ProviderChain
from ilyd.enrich.dataset import DatasetProvider
from ilyd.enrich.dataset_settings import DatasetSettings
from ilyd.enrich.dns_provider import DnsProvider, DnsSettings
from ilyd.enrich.http_provider import HttpProvider, HttpSettings
from ilyd.enrich.provider import Lookup, Provider
from ilyd.enrich.provider_health import HEALTHY, ProviderHealth
from ilyd.errors import ConfigError, ProviderError
from ilyd.store.cache import CachedProvider, CacheSettings, ProviderCache
from ilyd.store.db import Database

if TYPE_CHECKING:
    from ilyd.config import OrgConfig

__all__ = ["ProviderRegistry", "SharedProvider", "build_provider", "find_registry",
           "is_devorg_org", "registry_for", "sample_refusal", "watch_health"]

log = structlog.get_logger(__name__)


def _canonical(value: Any) -> Any:
    """A JSON-able, order-independent form of settings (dataclasses, mappings, paths)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda i: str(i[0]))}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, Enum | Path):
        return str(value)
    return value


def provider_key(spec: ProviderSpec, secret: str | None) -> str:
    """The identity of a provider instance: its settings, TTLs and (a digest of) its secret."""
    digest = hashlib.sha256(secret.encode()).hexdigest() if secret is not None else None
    return json.dumps([settings_key(spec), digest], sort_keys=True)


def settings_key(spec: ProviderSpec) -> str:
    """The provider's settings and TTLs (not its secret) in a canonical form."""
    return json.dumps(_canonical(replace(spec, secret=None)), sort_keys=True, default=str)


def build_provider(spec: ProviderSpec, secret: str | None) -> Provider:
    """A new provider for `spec` (raises ConfigError when it cannot be built)."""
    settings = spec.settings
    if isinstance(settings, DatasetSettings):
        return DatasetProvider(settings)
    if isinstance(settings, HttpSettings):
        if spec.secret is not None and secret is None:
            raise ConfigError(f"enrichment provider {spec.name!r}: its secret was not read "
                              "when the org started")
        return HttpProvider(replace(settings, secret=secret))
    if isinstance(settings, DnsSettings):
        return DnsProvider(settings)
    raise ConfigError(f"enrichment provider {spec.name!r}: unknown type {spec.type!r}")


def is_devorg_org(login_url: str) -> bool:
    """Whether the org's login URL (its `environment`) is on the loopback interface.

    Salesforce never serves an org on this machine's loopback, so such an org is an
    emulator (`ilyd devorg`, the demo, tests) — decided from the config the admin wrote,
    not from anything the server answers.
    """
    return is_loopback_host(urlsplit(login_url).hostname or "")


def sample_refusal(org: OrgConfig) -> str | None:
    """Why `org` must not start with its providers, or None when it may.

    The bundled sample is 3,000 made-up companies: in a real org every enriched record
    would get made-up values (or "Not Found"). It serves devorg orgs; anywhere else it
    needs `allow_real_org = true` on that provider, written on purpose.
    """
    if is_devorg_org(org.login_url):
        return None
    sample = [p.name for p in org.enrich.providers if isinstance(p.settings, DatasetSettings)
              and p.settings.is_sample and not p.settings.allow_real_org]
    if not sample:
        return None
    return (f"enrichment source: provider {sample[0]!r} is the bundled synthetic sample"
            " (path = \"@sample\", made-up companies, also the default when no provider is"
            f" configured), for devorg orgs and the demo only; org {org.name!r} is a"
            f" Salesforce org ({org.login_url}), so it does not start. Fix: choose your"
            " enrichment source in [defaults.enrich] or [org.enrich] (your dataset file, a"
            " vendor's HTTP API, DNS, or a chain; docs/install.md, \"Choose your enrichment"
            " source\"), or set allow_real_org = true on that provider to write synthetic"
            " data on purpose")


@dataclass
class _Entry:
    provider: Provider
    settings: str
    users: int = 0


class ProviderRegistry:
    """Provider instances by key, with a user count each, over one cache. Thread-safe."""

    def __init__(self, database: Database | None) -> None:
        self.database = database
        self.cache = ProviderCache(database) if database is not None else None
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def acquire(self, spec: ProviderSpec, secret: str | None) -> SharedProvider:
        """A handle on the shared instance for `spec`, built on first use."""
        key = provider_key(spec, secret)
        settings = settings_key(spec)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self._refuse_name_clash(spec, settings)
                # Built under the lock: two orgs starting together must not both load a
                # dataset or open two pools to the same vendor.
                entry = _Entry(self._wrap(spec, build_provider(spec, secret)), settings)
                self._entries[key] = entry
                log.info("provider_started", provider=spec.name, type=spec.type)
            entry.users += 1
            return SharedProvider(self, key, entry.provider)

    def release(self, key: str) -> None:
        """One handle is closed; the last one closes the instance."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return
            entry.users -= 1
            if entry.users > 0:
                return
            del self._entries[key]
        entry.provider.close()
        log.info("provider_closed", provider=entry.provider.name)

    def _refuse_name_clash(self, spec: ProviderSpec, settings: str) -> None:
        # Cached answers are keyed by provider name (and Source shows it): two different
        # configurations under one name would read each other's answers.
        for entry in self._entries.values():
            if entry.provider.name == spec.name and entry.settings != settings:
                raise ConfigError(
                    f"enrichment provider name {spec.name!r} is already used by another org"
                    " with different settings; cached answers are kept per name, so give"
                    " this configuration its own name (name = …) or make the settings equal")

    def instances(self) -> int:
        """How many provider instances are open."""
        with self._lock:
            return len(self._entries)

    def _wrap(self, spec: ProviderSpec, provider: Provider) -> Provider:
        if self.cache is None or (spec.cache_ttl <= 0 and spec.negative_cache_ttl <= 0):
            return provider
        return CachedProvider(provider, self.cache,
                              CacheSettings(positive_ttl_seconds=spec.cache_ttl,
                                            negative_ttl_seconds=spec.negative_cache_ttl))


class SharedProvider:
    """One org's handle on a shared provider: answers through it; `close` lets go of it."""

    def __init__(self, registry: ProviderRegistry, key: str, provider: Provider) -> None:
        self.name = provider.name
        self.provider = provider
        self._registry = registry
        self._key = key
        self._closed = threading.Event()

    @property
    def health(self) -> ProviderHealth:
        """The shared provider's health."""
        return getattr(self.provider, "health", HEALTHY)

    def lookup(self, domain: str) -> Lookup:
        """Look one domain up through the shared provider."""
        return self.provider.lookup(domain)

    def lookup_many(self, domains: Iterable[str]) -> Mapping[str, Lookup | ProviderError]:
        """Look several domains up through the shared provider."""
        return self.provider.lookup_many(domains)

    def close(self) -> None:
        """Release this handle (once; later calls do nothing)."""
        if not self._closed.is_set():
            self._closed.set()
            self._registry.release(self._key)


_registries_lock = threading.Lock()
_registries: weakref.WeakKeyDictionary[Database, ProviderRegistry] = weakref.WeakKeyDictionary()
_uncached = ProviderRegistry(None)


def registry_for(database: Database | None) -> ProviderRegistry:
    """The registry (and cache) of a state database; without one, a shared uncached one."""
    if database is None:
        return _uncached
    with _registries_lock:
        registry = _registries.get(database)
        if registry is None:
            registry = _registries[database] = ProviderRegistry(database)
        return registry


def find_registry(path: Path) -> ProviderRegistry | None:
    """The live registry of the state database at `path`, if an org opened one."""
    with _registries_lock:
        for database, registry in list(_registries.items()):
            if database.path.resolve() == path.resolve():
                return registry
    return None


def secret_values(enrich: EnrichConfig, secrets: object | None) -> dict[str, str]:
    """The providers' secrets by provider name: those the org read at start, else read now."""
    given = dict(getattr(secrets, "providers", ()) or ())
    values: dict[str, str] = {}
    for spec in enrich.providers:
        if spec.secret is not None:
            values[spec.name] = given.get(spec.name) or spec.secret.read()
    return values


def chain_for(enrich: EnrichConfig, secrets: object | None = None,
              database: Database | None = None) -> Provider:
    """The org's provider: handles on the shared instances, chained in order of trust,
    cached in `database`'s provider cache.

    `secrets` is the org's `OrgSecrets` (the provider keys it read at start); without it
    the keys are read now. Close the result when done: that releases the handles."""
    registry = registry_for(database)
    values = secret_values(enrich, secrets)
    handles: list[SharedProvider] = []
    try:
        for spec in enrich.providers:
            handles.append(registry.acquire(spec, values.get(spec.name)))
    except BaseException:
        for handle in handles:
            handle.close()
        raise
    return handles[0] if len(handles) == 1 else ProviderChain(handles)


class HealthWatch:
    """Wraps an org's provider and reports, on change, which of its providers are FAILING
    (bad credentials, no credits) — an org-level error an admin must fix."""

    def __init__(self, provider: Provider, report: Callable[[str | None, str | None], None]
                 ) -> None:
        self.provider = provider
        self.name = provider.name
        self._report = report
        self._lock = threading.Lock()
        self._last: tuple[tuple[str, str], ...] = ()
        # A shared provider may already be failing (another org met the bad key first).
        self.check()

    @property
    def health(self) -> ProviderHealth:
        """The wrapped provider's health."""
        return getattr(self.provider, "health", HEALTHY)

    def lookup(self, domain: str) -> Lookup:
        """Look up through the wrapped provider, then check the providers' health."""
        try:
            return self.provider.lookup(domain)
        finally:
            self.check()

    def lookup_many(self, domains: Iterable[str]) -> Mapping[str, Lookup | ProviderError]:
        """Look up through the wrapped provider, then check the providers' health."""
        try:
            return self.provider.lookup_many(domains)
        finally:
            self.check()

    def close(self) -> None:
        """Close the wrapped provider."""
        self.provider.close()

    def check(self) -> None:
        """Report the failing providers if they changed since the last report."""
        members = getattr(self.provider, "providers", (self.provider,))
        failing = tuple(
            (p.name, h.message or "failing") for p in members
            if not (h := getattr(p, "health", HEALTHY)).ok
        )
        with self._lock:
            if failing == self._last:
                return
            self._last = failing
        if failing:
            log.error("provider_failing_reported", providers=[n for n, _ in failing])
            self._report(", ".join(n for n, _ in failing), " | ".join(m for _, m in failing))
        else:
            self._report(None, None)


def watch_health(provider: Provider,
                 publish: Callable[..., None] | None) -> Provider:
    """`provider` reporting FAILING providers to the org status (`provider_failing`,
    `provider_error` detail keys), or as is when there is nowhere to report."""
    if publish is None:
        return provider

    def report(names: str | None, message: str | None) -> None:
        publish(provider_failing=names, provider_error=message)

    return HealthWatch(provider, report)
