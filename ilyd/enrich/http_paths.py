"""Response paths and request templates for the generic HTTP provider.

A path is dotted keys with list indexes, e.g. `company.metrics.employees`, `tech[0].name`,
or `tech[*].name` (every element: a list). It is parsed once, when the provider is built,
so a typo in the configuration fails at start-up, not on the first record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

from ilyd.errors import ConfigError

# The `[*]` step: apply the rest of the path to every element of a list.
EVERY: Final = object()

PathStep = str | int | object
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+|\*)\]|(\.)")

# Salesforce multi-value text fields in ilyd are "; "-separated (like multi-select picklists).
LIST_SEPARATOR: Final = "; "


def parse_path(path: str) -> tuple[PathStep, ...]:
    """Parse a dotted path with list indexes into steps; raise ConfigError when malformed."""
    steps: list[PathStep] = []
    pos = 0
    expect_key = True
    while pos < len(path):
        m = _STEP.match(path, pos)
        if m is None:
            raise ConfigError(f"response path {path!r}: unexpected {path[pos]!r} at {pos}")
        key, index, dot = m.groups()
        if dot:
            if expect_key:
                raise ConfigError(f"response path {path!r}: empty key at {pos}")
            expect_key = True
        elif key is not None:
            if not expect_key:
                raise ConfigError(f"response path {path!r}: missing '.' before {key!r}")
            steps.append(key)
            expect_key = False
        else:
            steps.append(EVERY if index == "*" else int(index))
            expect_key = False
        pos = m.end()
    if path and expect_key:
        raise ConfigError(f"response path {path!r}: ends with '.'")
    return tuple(steps)


def resolve(data: object, steps: Sequence[PathStep]) -> object:
    """Follow the steps into decoded JSON; None when any step is missing."""
    current = data
    for i, step in enumerate(steps):
        if step is EVERY:
            if not isinstance(current, list):
                return None
            rest = steps[i + 1:]
            return [v for v in (resolve(item, rest) for item in current) if v is not None]
        if isinstance(step, int):
            if not isinstance(current, list) or step >= len(current):
                return None
            current = current[step]
        elif isinstance(current, Mapping):
            current = current.get(step)
        else:
            return None
        if current is None:
            return None
    return current


def field_value(value: object) -> str | int | float | bool | None:
    """Turn a JSON value into a value an Ily field can hold (lists are joined; objects dropped)."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, list):
        items = [str(v).strip() for v in value if isinstance(v, str | int | float)]
        unique = list(dict.fromkeys(i for i in items if i))
        return LIST_SEPARATOR.join(unique) or None
    return None


def render_body(template: object, domain: str | None, domains: Sequence[str] = ()) -> object:
    """Fill a JSON body template: the string "{domains}" becomes the list of domains and
    "{domain}" inside any string becomes the domain."""
    if isinstance(template, str):
        if template == "{domains}":
            return list(domains)
        return template.replace("{domain}", domain) if domain is not None else template
    if isinstance(template, Mapping):
        return {k: render_body(v, domain, domains) for k, v in template.items()}
    if isinstance(template, list):
        return [render_body(v, domain, domains) for v in template]
    return template
