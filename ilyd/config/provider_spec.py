"""What one configured enrichment source is: `ProviderSpec`, and the cache TTL keys
(`cache_ttl`, `negative_cache_ttl`) every provider table shares, with their defaults.

The provider tables themselves are parsed in `enrich_providers` (dataset, dns) and
`enrich_http`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from ilyd.config.schema import Field, number
from ilyd.config.secrets import SecretKind, SecretRef
from ilyd.enrich.dataset_settings import DatasetSettings, sample_dataset_path
from ilyd.enrich.dns_provider import DnsSettings
from ilyd.enrich.http_provider import HttpSettings

_DAY = 86400.0
# Default (positive, negative) cache TTLs per type. A dataset is a local file: caching
# its answers would only serve stale rows after the file is replaced.
DEFAULT_TTLS: Mapping[str, tuple[float, float]] = {
    "dataset": (0.0, 0.0),
    "http": (30 * _DAY, 7 * _DAY),
    "dns": (7 * _DAY, 1 * _DAY),
}
MAX_TTL = 365 * _DAY


@dataclass(frozen=True)
class ProviderSpec:
    """One configured enrichment source: its type, its settings, where its secret is,
    and how long its answers are cached (seconds; 0 = not cached)."""

    type: str
    settings: DatasetSettings | HttpSettings | DnsSettings
    cache_ttl: float = 0.0
    negative_cache_ttl: float = 0.0
    secret: SecretRef | None = None

    @property
    def name(self) -> str:
        """The provider's name (metrics label, Source value, cache key)."""
        return self.settings.name

    def resolved(self, base_dir: Path) -> ProviderSpec:
        """Relative dataset and secret file paths made absolute ("@sample" resolved)."""
        spec = self
        settings = self.settings
        if isinstance(settings, DatasetSettings):
            path = settings.path
            if str(path) == "@sample":
                path = sample_dataset_path()
            elif not path.is_absolute():
                path = base_dir / path
            spec = replace(spec, settings=replace(settings, path=path))
        secret = self.secret
        if secret is not None and secret.kind is SecretKind.FILE:
            location = base_dir / Path(secret.location).expanduser()
            spec = replace(spec, secret=replace(secret, location=str(location)))
        return spec

    def describe(self) -> str:
        """One line for `ilyd config show` and logs (secrets by reference only)."""
        s = self.settings
        where = (str(s.path) if isinstance(s, DatasetSettings)
                 else s.url if isinstance(s, HttpSettings)
                 else ",".join(s.nameservers) or "system resolver")
        secret = f" secret {self.secret.describe()}" if self.secret else ""
        return (f"{self.name}({self.type}):{where}{secret} "
                f"cache {self.cache_ttl:.0f}s/{self.negative_cache_ttl:.0f}s")


def cache_fields(kind: str) -> tuple[Field, ...]:
    """The two cache TTL fields of a provider table of type `kind`, with its defaults."""
    positive, negative = DEFAULT_TTLS[kind]
    return (
        Field("cache_ttl", number(0, MAX_TTL), positive,
              "seconds an answer with values is reused; 0 = no cache"),
        Field("negative_cache_ttl", number(0, MAX_TTL), negative,
              "seconds a not-found / invalid-domain answer is reused; 0 = no cache"),
    )
