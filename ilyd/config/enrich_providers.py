"""`[[…enrich.provider]]` tables: dataset, http and dns, each with its cache TTLs.

```toml
[[defaults.enrich.provider]]
type = "http"
name = "vendor"
url = "https://api.vendor.example/v2/companies/find?domain={domain}"
auth_header = "Authorization"
auth_prefix = "Bearer "
secret_file = "/etc/ilyd/vendor.key"      # or secret_env / secret_credential; never inline
fields = { Ily_Company_Name__c = "name", Ily_Employee_Count__c = "metrics.employees" }
cache_ttl = 2592000                       # seconds an answer is reused; 0 = no cache
negative_cache_ttl = 604800               # seconds a "not found" is reused

[[defaults.enrich.provider]]
type = "dns"
nameservers = ["127.0.0.53"]              # empty: the system resolver
```

Every problem is reported with its key path relative to the provider table (the caller
prefixes `provider[i]`). Secret references are kept as references; the org reads them
when it starts.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from ilyd.config.schema import (
    Field,
    NestedProblemsError,
    Problems,
    Table,
    choice,
    integer,
    is_loopback_host,
    join_path,
    number,
    optional,
    string,
    type_name,
    unknown_key_message,
)
from ilyd.config.secrets import SecretKind, SecretRef
from ilyd.enrich.dataset_settings import DatasetSettings
from ilyd.enrich.dns_provider import DnsSettings
from ilyd.enrich.fields import DATA_FIELDS, by_api_name
from ilyd.enrich.http_paths import parse_path
from ilyd.enrich.http_provider import HttpBatchSettings, HttpSettings
from ilyd.errors import ConfigError

__all__ = ["PROVIDER_TYPES", "ProviderSpec", "parse_provider"]

PROVIDER_TYPES = ("dataset", "http", "dns")

_DAY = 86400.0
# Default (positive, negative) cache TTLs per type. A dataset is a local file: caching
# its answers would only serve stale rows after the file is replaced.
_DEFAULT_TTLS: Mapping[str, tuple[float, float]] = {
    "dataset": (0.0, 0.0),
    "http": (30 * _DAY, 7 * _DAY),
    "dns": (7 * _DAY, 1 * _DAY),
}
_MAX_TTL = 365 * _DAY

_INLINE_FIX = (
    "secrets are never written inline in the config: put the API key in a file readable"
    " only by ilyd (chmod 600) and set secret_file, or use secret_credential"
    " (systemd LoadCredential=) or secret_env"
)
_FORBIDDEN = {key: _INLINE_FIX for key in
              ("secret", "api_key", "apikey", "key", "token", "password", "client_secret")}
# Header names that carry credentials: the value would be an inline secret.
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key",
                                 "api-key", "apikey", "x-auth-token", "cookie"})
_SECRET_KINDS = (SecretKind.FILE, SecretKind.CREDENTIAL, SecretKind.ENV)


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
                from ilyd.enrich.dataset_settings import sample_dataset_path

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


def parse_provider(item: Mapping[str, Any], key: str) -> ProviderSpec:
    """One provider table; raise NestedProblemsError with paths relative to `key`'s parent."""
    kind = item.get("type", "dataset")
    if kind not in PROVIDER_TYPES:
        raise NestedProblemsError([f"{key}.type: must be one of {', '.join(PROVIDER_TYPES)}"
                              f" (got {kind!r})"])
    if kind == "dataset":
        return _dataset(item, key)
    problems = Problems()
    table = _http_table() if kind == "http" else _dns_table()
    spec = table.parse(item, key, problems)
    if spec is None:
        raise NestedProblemsError(problems.items)
    return spec


# ----------------------------------------------------------------------------- dataset


def _ttls(item: Mapping[str, Any], key: str, kind: str,
          problems: list[str]) -> tuple[float, float]:
    convert = number(0, _MAX_TTL)
    ttls = []
    for name, default in zip(("cache_ttl", "negative_cache_ttl"), _DEFAULT_TTLS[kind],
                             strict=True):
        try:
            ttls.append(convert(item[name]) if name in item else default)
        except ValueError as exc:
            problems.append(f"{key}.{name}: {exc}")
            ttls.append(default)
    return ttls[0], ttls[1]


def _dataset(item: Mapping[str, Any], key: str) -> ProviderSpec:
    problems: list[str] = []
    cache_ttl, negative = _ttls(item, key, "dataset", problems)
    raw = {k: v for k, v in item.items() if k not in ("cache_ttl", "negative_cache_ttl")}
    # Paths stay as written ("@sample" too): the org spec resolves them.
    unresolved = {**raw, "path": "@unresolved"} if "path" in raw else raw
    settings = None
    try:
        settings = DatasetSettings.from_config(unresolved, key=key)
    except ConfigError as exc:
        problems.extend(exc.problems)
    if problems or settings is None:
        raise NestedProblemsError(problems)
    settings = replace(settings, path=Path(str(raw["path"])))
    return ProviderSpec("dataset", settings, cache_ttl, negative)


# -------------------------------------------------------------------------------- http


def _url(value: Any) -> str:
    text = string()(value)
    parts = urlsplit(text.replace("{domain}", "x").replace("{domains}", "x"))
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"must be an https:// URL (got {text!r})")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError(f"must use https:// (got {text!r}); plain http is only allowed on"
                         " loopback, for local test servers")
    return text


def _response_path(value: Any) -> str:
    text = string(empty=True)(value)
    try:
        parse_path(text)
    except ConfigError as exc:
        raise ValueError(str(exc)) from exc
    return text


def _body(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a table, the JSON body template (got {type_name(value)})")
    return MappingProxyType(dict(value))


def _headers(value: Any) -> Mapping[str, str]:
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError(f"must be a table of header = \"value\" (got {type_name(value)})")
    problems = [f"{name}: carries a credential, which must not be inline; name the header in"
                " auth_header and point secret_file (or secret_env / secret_credential) at"
                " the value" for name in value if name.lower() in _CREDENTIAL_HEADERS]
    if problems:
        raise NestedProblemsError(problems)
    return MappingProxyType(dict(value))


def _fields(value: Any) -> Mapping[str, str]:
    """Ily field API name = response path (validated against the field catalogue)."""
    if not isinstance(value, Mapping) or not value:
        raise ValueError("must be a non-empty table of Ily field = \"response.path\", e.g."
                         " { Ily_Company_Name__c = \"name\" }")
    known = sorted(by_api_name())
    data = {f.api_name for f in DATA_FIELDS}
    problems: list[str] = []
    fields: dict[str, str] = {}
    for name, path in value.items():
        if name not in known:
            problems.append(f"{name}: {unknown_key_message(name, known)}"
                            .replace("unknown key", "not an Ily field"))
        elif name not in data:
            problems.append(f"{name}: is written by ilyd itself; map an Ily data field")
        else:
            try:
                fields[name] = _response_path(path)
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
    if problems:
        raise NestedProblemsError(problems)
    return MappingProxyType(fields)


def _batch(value: Any) -> HttpBatchSettings:
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a table (got {type_name(value)})")
    table: Table[HttpBatchSettings] = Table(
        fields=(
            Field("url", _url),
            Field("max_domains", integer(1, 1000), 25),
            Field("method", choice("GET", "POST"), "GET"),
            Field("body", optional(_body), None),
            Field("results_path", _response_path, ""),
            Field("match_path", _response_path, "domain"),
        ),
        build=HttpBatchSettings,
        check=_check_batch,
    )
    problems = Problems()
    built = table.parse(value, "", problems)
    if built is None:
        raise NestedProblemsError(problems.items)
    return built


def _check_batch(values: dict[str, Any], path: str, problems: Problems) -> None:
    if values["method"] == "GET" and "{domains}" not in values["url"]:
        problems.add(join_path(path, "url"),
                     "must contain {domains} (the comma-joined domains) for a GET batch")
    if values["method"] == "POST" and values["body"] is None:
        problems.add(join_path(path, "body"),
                     "a POST batch needs a body template with \"{domains}\"")


def _check_http(values: dict[str, Any], path: str, problems: Problems) -> None:
    refs = [(kind, values[f"secret_{kind}"]) for kind in _SECRET_KINDS
            if values[f"secret_{kind}"] is not None]
    if len(refs) > 1:
        problems.add(path, "set only one of " + ", ".join(f"secret_{k}" for k, _ in refs))
    located = values["auth_header"] or values["auth_query"]
    if values["auth_header"] and values["auth_query"]:
        problems.add(path, "set auth_header or auth_query, not both")
    if located and not refs:
        problems.add(path, "auth_header / auth_query needs the key's location: set secret_file"
                     " (or secret_credential / secret_env)")
    if refs and not located:
        problems.add(path, "a secret is set but not where it goes: set auth_header (e.g."
                     " \"Authorization\") or auth_query (e.g. \"api_key\")")
    if values["method"] == "GET" and "{domain}" not in values["url"]:
        problems.add(f"{path}.url", "must contain {domain} (or use method = \"POST\" with a"
                     " body template)")
    if values["method"] == "POST" and values["body"] is None:
        problems.add(f"{path}.body", "method = \"POST\" needs a body template, e.g."
                     " { domain = \"{domain}\" }")
    if values["method"] == "GET" and values["body"] is not None:
        problems.add(f"{path}.body", "only sent with method = \"POST\"")
    values["_secret"] = (SecretRef(refs[0][0], str(refs[0][1]),
                                   f"enrich.provider{path}.secret_{refs[0][0]}")
                         if len(refs) == 1 else None)


def _build_http(**v: Any) -> ProviderSpec:
    settings = HttpSettings(
        name=v["name"], url=v["url"], fields=v["fields"], method=v["method"], body=v["body"],
        result_path=v["result_path"], status_path=v["status_path"],
        auth_header=v["auth_header"], auth_query=v["auth_query"],
        auth_prefix=v["auth_prefix"], headers=v["headers"], timeout_seconds=v["timeout"],
        requests_per_second=v["requests_per_second"], max_concurrency=v["max_concurrency"],
        max_attempts=v["max_attempts"], batch=v["batch"],
    )
    return ProviderSpec("http", settings, v["cache_ttl"], v["negative_cache_ttl"],
                        v["_secret"])


def _cache_fields(kind: str) -> tuple[Field, ...]:
    positive, negative = _DEFAULT_TTLS[kind]
    return (
        Field("cache_ttl", number(0, _MAX_TTL), positive,
              "seconds an answer with values is reused; 0 = no cache"),
        Field("negative_cache_ttl", number(0, _MAX_TTL), negative,
              "seconds a not-found / invalid-domain answer is reused; 0 = no cache"),
    )


def _http_table() -> Table[ProviderSpec]:
    def build(**values: Any) -> ProviderSpec:
        values.pop("type")
        for kind in _SECRET_KINDS:
            values.pop(f"secret_{kind}")
        return _build_http(**values)

    return Table(
        fields=(
            Field("type", choice("http")),
            Field("name", string(), "http", "metrics label, Source value and cache key"),
            Field("url", _url, doc="URL template with {domain}"),
            Field("method", choice("GET", "POST"), "GET"),
            Field("body", optional(_body), None, "JSON body template (POST)"),
            Field("fields", _fields, doc="Ily field API name = response path"),
            Field("result_path", _response_path, ""),
            Field("status_path", _response_path, "status"),
            Field("auth_header", optional(string()), None),
            Field("auth_query", optional(string()), None),
            Field("auth_prefix", string(empty=True), ""),
            *(Field(f"secret_{kind}", optional(string()), None) for kind in _SECRET_KINDS),
            Field("headers", _headers, MappingProxyType({})),
            Field("timeout", number(0.1, 300), 10.0, "seconds per request"),
            Field("requests_per_second", number(0.01, 10_000), 5.0),
            Field("max_concurrency", integer(1, 256), 4),
            Field("max_attempts", integer(1, 10), 4, "tries of a 5xx / timeout"),
            Field("batch", optional(_batch), None, "an endpoint taking N domains per call"),
            *_cache_fields("http"),
        ),
        build=build,
        forbidden=_FORBIDDEN,
        check=_check_http,
    )


# --------------------------------------------------------------------------------- dns


def _nameservers(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"must be an array of IP addresses (got {type_name(value)})")
    bad = []
    for text in value:
        try:
            ipaddress.ip_address(text)
        except ValueError:
            bad.append(text)
    if bad:
        raise ValueError(f"must be IP addresses, not host names: {', '.join(map(repr, bad))}")
    return tuple(value)


def _check_dns(values: dict[str, Any], path: str, problems: Problems) -> None:
    if values["budget"] < values["query_timeout"]:
        problems.add(f"{path}.budget", f"must be at least query_timeout"
                     f" ({values['query_timeout']:g}s): it is the total per domain")


def _dns_table() -> Table[ProviderSpec]:
    def build(**v: Any) -> ProviderSpec:
        settings = DnsSettings(
            name=v["name"], nameservers=v["nameservers"], port=v["port"],
            query_timeout_seconds=v["query_timeout"], budget_seconds=v["budget"],
            max_concurrency=v["max_concurrency"],
        )
        return ProviderSpec("dns", settings, v["cache_ttl"], v["negative_cache_ttl"])

    return Table(
        fields=(
            Field("type", choice("dns")),
            Field("name", string(), "dns"),
            Field("nameservers", _nameservers, (), "empty: the system resolver"),
            Field("port", integer(1, 65535), 53),
            Field("query_timeout", number(0.05, 60), 2.0, "seconds per DNS query"),
            Field("budget", number(0.1, 600), 10.0, "seconds for all queries of a domain"),
            Field("max_concurrency", integer(1, 1024), 16),
            *_cache_fields("dns"),
        ),
        build=build,
        check=_check_dns,
    )
