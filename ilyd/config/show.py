"""Render the effective config as TOML, secrets shown only as their references."""

from __future__ import annotations

import json
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from ilyd.config.model import Config
from ilyd.config.secrets import SecretRef


def render_config(config: Config) -> str:
    """The effective configuration (defaults filled in, secrets masked) as TOML text."""
    lines = [f"# effective configuration of {config.path}"]
    for section in fields(config):
        value = getattr(config, section.name)
        if is_dataclass(value):
            lines += ["", f"[{section.name}]", *_table_lines(value)]
        if section.name == "daemon":
            from ilyd.shards import process_count  # ilyd.shards imports this package

            count = process_count(config)
            lines.append(f"# worker processes here: {count}" if count > 1 else
                         "# worker processes here: none (the orgs run in ilyd run itself)")
    for org in config.orgs:
        lines += ["", "[[org]]", *_table_lines(org)]
    for error in config.org_errors:
        lines += ["", f"# [[org]] {error.name}: not loaded (state config_error)"]
        lines += [f"#   {problem}" for problem in error.problems]
    return "\n".join(lines) + "\n"


def _table_lines(obj: Any) -> list[str]:
    lines = []
    for item in fields(obj):
        value = getattr(obj, item.name)
        if value is None and item.name == "processes":
            lines.append('processes = "auto"')
            continue
        if value is None:
            continue
        lines.append(f"{item.name} = {_toml_value(value)}")
    return lines


def _toml_value(value: Any) -> str:
    if isinstance(value, SecretRef):
        return json.dumps(value.describe()) + "  # secret, masked"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Path):
        return json.dumps(str(value))
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], int):
        host, port = value
        return json.dumps(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))
