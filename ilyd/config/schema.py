"""A small schema toolkit: field specs, converters and key-path problem collection.

A `Table` describes one TOML table as a tuple of `Field`s. `Table.parse` converts every
key it knows, reports every key it does not know (with a "did you mean" suggestion),
reports forbidden keys with their fix, and records each problem with its key path in a
shared `Problems` list, so that one run reports every mistake in the file at once.

A config section added later is a short module: a frozen dataclass, a `Table` built from
`Field`s with the converters below, and one line in `ilyd.config.loader.GLOBAL_TABLES`.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# A converter turns a raw TOML value into the typed value or raises ValueError whose
# message says what is wrong (the key path is added by the caller).
Converter = Callable[[Any], Any]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


class NestedProblemsError(ValueError):
    """Raised by a converter of a nested value (a table, an array of tables) with every
    problem inside it, each as "relative.key.path: message", so each keeps its full path."""

    def __init__(self, items: Sequence[str]) -> None:
        super().__init__("; ".join(items))
        self.items = tuple(items)


class Problems:
    """Every problem found in a config file, each prefixed with its key path, and the
    warnings: what is not ready yet but is no mistake (they never fail a table)."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.warnings: list[str] = []

    def add(self, path: str, message: str) -> None:
        """Record one problem at `path` (e.g. ``org[2].client_id``)."""
        self.items.append(f"{path}: {message}" if path else message)

    def warn(self, path: str, message: str) -> None:
        """Record one warning at `path`."""
        self.warnings.append(f"{path}: {message}" if path else message)

    def __len__(self) -> int:
        return len(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def join_path(base: str, key: str | int) -> str:
    """Join a key path: ``org[2]`` + ``name`` -> ``org[2].name``; ``org`` + 2 -> ``org[2]``.

    A key TOML would not accept bare (empty, spaces, dots, quotes) is quoted as TOML
    writes it, so the path names one key: ``defaults."a.b"``, not ``defaults.a.b``.
    """
    if isinstance(key, int):
        return f"{base}[{key}]"
    if not _BARE_KEY.fullmatch(key):
        key = json.dumps(key, ensure_ascii=False)
    return f"{base}.{key}" if base else key


@dataclass(frozen=True)
class Field:
    """One key of a table: its name, converter, default and a one-line description."""

    name: str
    convert: Converter
    default: Any = REQUIRED
    doc: str = ""
    # Inheritable fields take their default from a base table (e.g. [defaults] for [[org]]).
    inherit: bool = False


@dataclass(frozen=True)
class Table(Generic[T]):
    """The spec of one TOML table, and how to build its frozen dataclass."""

    fields: tuple[Field, ...]
    build: Callable[..., T]
    # Keys that must not appear, each with the message saying what to write instead.
    forbidden: Mapping[str, str] = field(default_factory=dict)
    # Cross-field checks on the converted values; they add problems themselves.
    check: Callable[[dict[str, Any], str, Problems], None] | None = None

    def names(self) -> tuple[str, ...]:
        """The known keys, in declaration order."""
        return tuple(f.name for f in self.fields)

    def parse(
        self,
        raw: object,
        path: str,
        problems: Problems,
        base: Mapping[str, Any] | None = None,
    ) -> T | None:
        """Convert `raw`; return the built object, or None when this table had a problem."""
        before = len(problems)
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            problems.add(path, f"must be a table (got {type_name(raw)})")
            return None
        known = self.names()
        for key in raw:
            if key in known:
                continue
            if key in self.forbidden:
                problems.add(join_path(path, key), self.forbidden[key])
            else:
                problems.add(join_path(path, key), unknown_key_message(key, known))
        values: dict[str, Any] = {}
        for spec in self.fields:
            key_path = join_path(path, spec.name)
            if spec.name in raw:
                try:
                    values[spec.name] = spec.convert(raw[spec.name])
                except NestedProblemsError as exc:
                    for item in exc.items:
                        sep = "" if item.startswith(("[", ":")) else "."
                        problems.items.append(f"{key_path}{sep}{item}")
                except ValueError as exc:
                    problems.add(key_path, str(exc))
            elif spec.inherit and base is not None and spec.name in base:
                values[spec.name] = base[spec.name]
            elif spec.default is REQUIRED:
                problems.add(key_path, "missing required key")
            else:
                values[spec.name] = spec.default
        # Cross-field checks run whenever every field converted, so a typo elsewhere in
        # the table does not hide a missing secret file.
        if self.check is not None and len(values) == len(self.fields):
            self.check(values, path, problems)
        if len(problems) != before:
            return None
        return self.build(**values)

    def defaults(self) -> dict[str, Any]:
        """The values of the fields that have defaults (used to inherit from [defaults])."""
        return {f.name: f.default for f in self.fields if f.default is not REQUIRED}


def unknown_key_message(key: str, known: Sequence[str]) -> str:
    """Say the key is unknown, suggesting the closest known one (declaration order wins ties)."""
    scored = [(difflib.SequenceMatcher(None, key, k).ratio(), k) for k in known]
    close = [(r, k) for r, k in scored if r >= 0.6]
    if not close:
        return "unknown key"
    best = max(r for r, _ in close)
    # Near-ties go to the key declared first: the spec lists the preferred form first
    # (client_secret_file before client_secret_env).
    suggestion = next(k for r, k in close if r >= best - 0.05)
    return f"unknown key (did you mean {suggestion}?)"


def type_name(value: object) -> str:
    """A TOML-flavoured name for a value's type, for messages."""
    return {
        bool: "a boolean", int: "an integer", float: "a float", str: "a string",
        list: "an array", dict: "a table",
    }.get(type(value), type(value).__name__)


# ----------------------------------------------------------------------- converters


def string(*, empty: bool = False) -> Converter:
    """A string; empty strings are refused unless `empty`."""

    def convert(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be a string (got {type_name(value)})")
        if not empty and not value.strip():
            raise ValueError("must not be empty")
        return value

    return convert


def optional(inner: Converter) -> Converter:
    """Like `inner`, but an empty string means "unset" (None)."""

    def convert(value: Any) -> Any:
        if value == "":
            return None
        return inner(value)

    return convert


def boolean() -> Converter:
    """true or false."""

    def convert(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false (got {type_name(value)})")
        return value

    return convert


def integer(minimum: int | None = None, maximum: int | None = None) -> Converter:
    """An integer within [minimum, maximum]."""

    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer (got {type_name(value)})")
        _check_range(value, minimum, maximum)
        return value

    return convert


def number(minimum: float | None = None, maximum: float | None = None) -> Converter:
    """A number (integer or float) within [minimum, maximum], as a float."""

    def convert(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number (got {type_name(value)})")
        _check_range(value, minimum, maximum)
        return float(value)

    return convert


def _check_range(value: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and value < minimum:
        raise ValueError(f"must be at least {minimum} (got {value})")
    if maximum is not None and value > maximum:
        raise ValueError(f"must be at most {maximum} (got {value})")


def choice(*allowed: str) -> Converter:
    """One of the given strings."""

    def convert(value: Any) -> str:
        if value not in allowed:
            raise ValueError(
                f"must be one of {', '.join(repr(a) for a in allowed)} (got {value!r})"
            )
        return value

    return convert


def string_list(allowed: Sequence[str] | None = None, *, empty: bool = False) -> Converter:
    """An array of distinct strings, optionally from a fixed set; returned as a tuple."""

    def convert(value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"must be an array of strings (got {type_name(value)})")
        if not empty and not value:
            raise ValueError("must not be empty")
        if allowed is not None:
            bad = [v for v in value if v not in allowed]
            if bad:
                raise ValueError(
                    f"unsupported value(s) {', '.join(map(repr, bad))};"
                    f" choose from {', '.join(map(repr, allowed))}"
                )
        if len(set(value)) != len(value):
            raise ValueError("has duplicate entries")
        return tuple(value)

    return convert


_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def slug() -> Converter:
    """A lower-case slug (letters, digits, dashes): used in CLI, logs and metric labels."""

    def convert(value: Any) -> str:
        text = string()(value)
        if not _SLUG.match(text):
            raise ValueError(
                f"must be a slug of lower-case letters, digits and dashes (got {text!r})"
            )
        return text

    return convert


def listen_address() -> Converter:
    """``host:port`` (IPv6 as ``[::1]:port``); port 0 picks a free port."""

    def convert(value: Any) -> tuple[str, int]:
        text = string()(value)
        host, sep, port_text = text.rpartition(":")
        if not sep or not port_text.isdigit() or not host:
            raise ValueError(f"must be HOST:PORT, e.g. '127.0.0.1:9464' (got {text!r})")
        port = int(port_text)
        if port > 65535:
            raise ValueError(f"port must be at most 65535 (got {port})")
        host = host.removeprefix("[").removesuffix("]")
        return host, port

    return convert


def is_loopback_host(host: str) -> bool:
    """Whether `host` names the loopback interface (localhost or 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
