"""Render the effective config as TOML, secrets shown only as their references.

`config_data` is the effective configuration as plain TOML data (defaults filled in,
relative paths resolved); `render_config` writes it with tomli-w, so whatever text the
file holds (an emoji in a label, any script) comes out as TOML that loads back equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import tomli_w

from ilyd.config.duration import format_duration
from ilyd.config.enrich import EnrichConfig
from ilyd.config.model import Config
from ilyd.config.processes import process_count
from ilyd.config.provider_spec import ProviderSpec
from ilyd.config.secrets import SecretRef


def render_config(config: Config) -> str:
    """The effective configuration (defaults filled in, secrets masked) as TOML text."""
    count = process_count(config)
    lines = [
        f"# effective configuration of {config.path}",
        "# secrets are shown as references only (*_file, *_env, *_credential), never values",
        f"# worker processes here: {count}" if count > 1 else
        "# worker processes here: none (the orgs run in ilyd run itself)",
    ]
    for error in config.org_errors:
        lines += [f"# [[org]] {error.name}: not loaded (state config_error)"]
        lines += [f"#   {problem}" for problem in error.problems]
    return "\n".join(lines) + "\n\n" + tomli_w.dumps(config_data(config))


def config_data(config: Config) -> dict[str, Any]:
    """The effective configuration as TOML data: what `render_config` writes."""
    daemon = _table(config.daemon)
    daemon.setdefault("processes", "auto")  # None: worked out from the orgs and CPUs
    listen = config.metrics.listen
    data: dict[str, Any] = {
        "daemon": daemon,
        # Written the way the file takes it: "HOST:PORT" ("[::1]:PORT"), "" when off.
        "metrics": {"listen": "" if listen is None else
                    f"[{listen[0]}]:{listen[1]}" if ":" in listen[0] else
                    f"{listen[0]}:{listen[1]}",
                    "per_org": config.metrics.per_org},
        "defaults": _table(config.defaults),
    }
    if config.orgs:
        data["org"] = [_table(org) for org in config.orgs]
    return data


def _table(obj: Any) -> dict[str, Any]:
    """A dataclass as a table: unset (None) values left out, secrets as references."""
    table: dict[str, Any] = {}
    for item in fields(obj):
        value = getattr(obj, item.name)
        if value is None or (item.name == "secret" and not isinstance(value, SecretRef)):
            continue  # a provider's secret value is never part of the config
        if isinstance(value, SecretRef):
            table[f"{item.name}_{value.kind}"] = value.location
        elif isinstance(value, EnrichConfig):
            table[item.name] = _enrich(value)
        else:
            table[item.name] = _value(value)
    return table


def _enrich(enrich: EnrichConfig) -> dict[str, Any]:
    return {
        "writer_window": enrich.writer_window,
        "writer_window_max": enrich.writer_window_max,
        "api_share": enrich.api_share,
        "history_days": enrich.history_days,
        "refresh_after": format_duration(enrich.refresh_after),
        "refresh_api_share": enrich.refresh_api_share,
        "refresh_interval": format_duration(enrich.refresh_interval),
        "overwrite": {name: str(policy) for name, policy in enrich.overwrite},
        "provider": [_provider(spec) for spec in enrich.providers],
    }


def _provider(spec: ProviderSpec) -> dict[str, Any]:
    table = {"type": spec.type, **_table(spec.settings),
             "cache_ttl": spec.cache_ttl, "negative_cache_ttl": spec.negative_cache_ttl}
    if spec.secret is not None:
        table[f"secret_{spec.secret.kind}"] = spec.secret.location
    return table


def _value(value: Any) -> Any:
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _value(v) for k, v in value.items() if v is not None}
    if isinstance(value, tuple | list):
        return [_value(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return _table(value)
    return value
