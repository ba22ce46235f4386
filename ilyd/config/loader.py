"""Read a TOML file into a validated `Config`, collecting every problem with its key path.

Problems in the global tables make the whole file invalid (`ConfigError`); problems in
one `[[org]]` only put that org in the config_error state (`Config.org_errors`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import tomli

from ilyd.config.model import Config, OrgConfig, OrgConfigError, OrgName
from ilyd.config.org import org_table
from ilyd.config.schema import Problems, Table, join_path, slug, unknown_key_message
from ilyd.config.tables import DEFAULTS_TABLE, METRICS_TABLE, daemon_table
from ilyd.errors import ConfigError

# Global tables: TOML table name -> its spec (given the config file's directory). The
# name is also the `Config` attribute the parsed section is stored in. A new section is
# one entry here plus one field on `Config`.
GLOBAL_TABLES: dict[str, Callable[[Path], Table[Any]]] = {
    "daemon": daemon_table,
    "metrics": lambda _base: METRICS_TABLE,
    "defaults": lambda _base: DEFAULTS_TABLE,
}
_ORG_KEY = "org"


def load_config(path: Path | str) -> Config:
    """Load and validate `path`.

    Raise ConfigError when a global table has a problem, listing every problem in the
    file (the orgs' too); otherwise the orgs with problems are in `Config.org_errors`.
    """
    path = Path(path)
    raw = read_toml(path)
    base_dir = path.resolve().parent
    problems = Problems()
    for key in raw:
        if key not in GLOBAL_TABLES and key != _ORG_KEY:
            problems.add(join_path("", key),
                         unknown_key_message(key, (*GLOBAL_TABLES, _ORG_KEY)))
    sections: dict[str, Any] = {
        name: factory(base_dir).parse(raw.get(name), name, problems)
        for name, factory in GLOBAL_TABLES.items()
    }
    raw_orgs = raw.get(_ORG_KEY, [])
    if not isinstance(raw_orgs, list):
        problems.add(_ORG_KEY, "must be an array of tables: write each org as [[org]]")
        raw_orgs = []
    if problems:
        # The orgs are checked too, against the defaults of the tables that failed, so
        # one run of `ilyd config check` reports every mistake in the file.
        for name, factory in GLOBAL_TABLES.items():
            if sections[name] is None:
                sections[name] = factory(base_dir).parse({}, name, Problems())
        _orgs, org_errors, _warnings = _load_orgs(raw_orgs, path, sections)
        raise ConfigError(problems.items + [p for e in org_errors for p in e.problems])
    orgs, org_errors, warnings = _load_orgs(raw_orgs, path, sections)
    return Config(path=path, orgs=orgs, org_errors=org_errors, warnings=warnings, **sections)


def read_toml(path: Path) -> dict[str, Any]:
    """Parse the file; a syntax error names the file, line and column."""
    try:
        with path.open("rb") as handle:
            return tomli.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such config file; pass --config PATH") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        # TOML files are UTF-8 only (https://toml.io/en/v1.0.0#spec).
        raise ConfigError(
            f"{path}: not UTF-8 (byte {exc.object[exc.start]:#04x} at offset {exc.start});"
            " save the file as UTF-8"
        ) from exc
    except tomli.TOMLDecodeError as exc:
        lineno, colno = getattr(exc, "lineno", None), getattr(exc, "colno", None)
        if lineno is not None:
            message = getattr(exc, "msg", str(exc))
            raise ConfigError(
                f"{path}:{lineno}:{colno}: TOML syntax error: {message}"
                f" (line {lineno}, column {colno})"
            ) from exc
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from exc


def _load_orgs(
    raw_orgs: list[Any], config_path: Path, sections: Mapping[str, Any]
) -> tuple[tuple[OrgConfig, ...], tuple[OrgConfigError, ...], tuple[str, ...]]:
    table = org_table(config_path, sections["daemon"].state_dir)
    # Shallow on purpose: nested settings (enrich) are inherited as objects, not dicts.
    defaults = sections["defaults"]
    inherited = {f.name: getattr(defaults, f.name) for f in fields(defaults)}
    orgs: list[OrgConfig] = []
    errors: list[OrgConfigError] = []
    warnings: list[str] = []
    first_index: dict[str, int] = {}
    for index, raw in enumerate(raw_orgs):
        path = join_path(_ORG_KEY, index)
        problems = Problems()
        name = _readable_name(raw)
        if name is not None and name in first_index:
            problems.add(
                f"{path}.name",
                f"duplicate of {_ORG_KEY}[{first_index[name]}].name {name!r};"
                " org names must be unique",
            )
            name = None
        elif name is not None:
            first_index[name] = index
        org = table.parse(raw, path, problems, base=inherited)
        warnings += problems.warnings
        if org is None or problems:
            errors.append(OrgConfigError(OrgName(name or path), index, tuple(problems.items)))
        else:
            orgs.append(org)
    return tuple(orgs), tuple(errors), tuple(warnings)


def _readable_name(raw: Any) -> str | None:
    if not isinstance(raw, Mapping):
        return None
    try:
        return slug()(raw.get("name"))
    except ValueError:
        return None
