"""`[[…enrich.provider]]` tables: dataset, http and dns, each with its cache TTLs.

`parse_provider` picks the table by `type` and parses the dataset and dns ones here; the
http table is in `ilyd.config.enrich_http`, `ProviderSpec` (what each table becomes) in
`ilyd.config.provider_spec`.

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
from dataclasses import replace
from pathlib import Path
from typing import Any

from ilyd.config.enrich_http import http_table
from ilyd.config.provider_spec import DEFAULT_TTLS, MAX_TTL, ProviderSpec, cache_fields
from ilyd.config.schema import (
    Field,
    NestedProblemsError,
    Problems,
    Table,
    choice,
    integer,
    number,
    string,
    type_name,
)
from ilyd.enrich.dataset_settings import DatasetSettings
from ilyd.enrich.dns_provider import DnsSettings
from ilyd.errors import ConfigError

__all__ = ["PROVIDER_TYPES", "ProviderSpec", "parse_provider"]

PROVIDER_TYPES = ("dataset", "http", "dns")


def parse_provider(item: Mapping[str, Any], key: str) -> ProviderSpec:
    """One provider table; raise NestedProblemsError with paths relative to `key`'s parent."""
    kind = item.get("type", "dataset")
    if kind not in PROVIDER_TYPES:
        raise NestedProblemsError([f"{key}.type: must be one of {', '.join(PROVIDER_TYPES)}"
                              f" (got {kind!r})"])
    if kind == "dataset":
        return _dataset(item, key)
    problems = Problems()
    table = http_table() if kind == "http" else _dns_table()
    spec = table.parse(item, key, problems)
    if spec is None:
        raise NestedProblemsError(problems.items)
    return spec


# ----------------------------------------------------------------------------- dataset


def _ttls(item: Mapping[str, Any], key: str, kind: str,
          problems: list[str]) -> tuple[float, float]:
    convert = number(0, MAX_TTL)
    ttls = []
    for name, default in zip(("cache_ttl", "negative_cache_ttl"), DEFAULT_TTLS[kind],
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
            *cache_fields("dns"),
        ),
        build=build,
        check=_check_dns,
    )
