"""SOQL literals built safely from Python values.

Every query ilyd builds from a value (a domain, an id, a cursor timestamp) goes through
`quote` or the `soql` template helper, so a value can never change the query's shape.
Escape sequences are Salesforce's ("Quoted String Escape Sequences", SOQL reference):
backslash, both quotes, newline, carriage return, tab, backspace and form feed; `\\_` and
`\\%` only mean literal wildcards inside a LIKE pattern.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import lru_cache

__all__ = ["Fragment", "identifier", "like_pattern", "quote", "quote_string", "soql"]


class Fragment(str):
    """SOQL text that is already safe: a quoted LIKE pattern or a checked API name.

    `quote` and `soql` pass it through unchanged; only this module creates them.
    """

    __slots__ = ()

_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
_ESCAPE_RE = re.compile("[\\\\'\"\n\r\t\b\f]")
_LIKE_ESCAPES = {**_ESCAPES, "%": "\\%", "_": "\\_"}
_LIKE_RE = re.compile("[\\\\'\"\n\r\t\b\f%_]")

# API names: Account, Ily_Cloud_Spend__c, Owner.Profile.Name, Custom__r.Field__c.
_IDENT_PART = r"[A-Za-z][A-Za-z0-9_]*"
_IDENT_RE = re.compile(rf"{_IDENT_PART}(?:\.{_IDENT_PART})*")


def quote_string(value: str) -> str:
    """Return `value` as a quoted SOQL string literal (`'O\\'Brien'`)."""
    return "'" + _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], value) + "'"


def like_pattern(value: str, *, prefix: bool = False, suffix: bool = False) -> Fragment:
    """Return a quoted LIKE pattern matching `value` literally.

    `%` and `_` in `value` are escaped so they match themselves; `prefix`/`suffix` add a
    trailing/leading `%` wildcard (``prefix=True`` matches strings starting with value).
    """
    body = _LIKE_RE.sub(lambda m: _LIKE_ESCAPES[m.group(0)], value)
    return Fragment("'" + ("%" if suffix else "") + body + ("%" if prefix else "") + "'")


def quote(value: object) -> str:
    """Return the SOQL literal for a Python value.

    str → quoted and escaped; None → null; bool → true/false; int/float/Decimal → number;
    datetime → UTC `2024-05-01T12:34:56Z` (naive datetimes are refused: SOQL datetimes
    need a zone); date → `2024-05-01`; a non-string iterable → `('a','b')` for IN;
    a `Fragment` (from `like_pattern`/`identifier`) as is.
    """
    if isinstance(value, Fragment):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return quote_string(value)
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"SOQL has no literal for {value!r}")
        # SOQL has no exponent notation: 1e-05 must be written 0.00001.
        return format(Decimal(repr(value)), "f")
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError(f"datetime {value!r} has no time zone; SOQL needs UTC")
        utc = value.astimezone(dt.UTC)
        frac = f".{utc.microsecond // 1000:03d}" if utc.microsecond else ""
        return utc.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Iterable) and not isinstance(value, bytes | Mapping):
        items = [quote(item) for item in value]
        if not items:
            # `IN ()` is a syntax error; callers must skip the query instead.
            raise ValueError("SOQL IN needs at least one value")
        return "(" + ",".join(items) + ")"
    raise TypeError(f"no SOQL literal for {type(value).__name__} value {value!r}")


def identifier(name: str) -> Fragment:
    """Return `name` unchanged if it is a (possibly dotted) API name, else raise ValueError.

    Field and object names cannot be quoted in SOQL, so names that come from config are
    checked against the API-name grammar instead.
    """
    return _checked_identifier(name)


# Every query a writer makes names the same few fields and objects: their checked
# Fragments are kept (a refused name raises, and is not kept).
@lru_cache(maxsize=1024)
def _checked_identifier(name: str) -> Fragment:
    if not _IDENT_RE.fullmatch(name):
        raise ValueError(f"{name!r} is not a Salesforce API name")
    return Fragment(name)


def soql(template: str, *args: object, **kwargs: object) -> str:
    """Fill `{}`/`{name}` placeholders of a SOQL template with quoted literals.

    ``soql("SELECT Id FROM Lead WHERE Email = {} AND Id IN {ids}", email, ids=ids)``;
    ``soql("SELECT Id, {f} FROM Account WHERE Name LIKE {}", like_pattern(p), f=identifier(n))``.
    Every argument goes through `quote`; only a `Fragment` is spliced as it is.
    """
    return template.format(
        *(quote(a) for a in args), **{k: quote(v) for k, v in kwargs.items()}
    )
