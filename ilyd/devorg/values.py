"""Field values: JSON/CSV input → Python values, Python values → JSON/CSV output.

Inside devorg a record holds str, bool, int, float, None, `datetime.date` and tz-aware UTC
`datetime.datetime`. Salesforce prints datetimes as `2024-05-01T12:34:56.000+0000`.
"""

from __future__ import annotations

import datetime as dt
import re

from ilyd.devorg.schema import FieldDef

UTC = dt.UTC
_NUMERIC = {"int", "double", "currency", "percent"}
_DT_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


class FieldValueError(Exception):
    """A value that cannot be stored in a field; carries Salesforce's code and wording."""

    def __init__(self, status_code: str, message: str, field: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.field = field



def _utf16_units(text: str) -> int:
    """A text's length in UTF-16 code units. Salesforce counts a character outside the
    Basic Multilingual Plane as two in formulas and Apex strings
    (https://help.salesforce.com/s/articleView?id=005166849&type=1); its field-length
    rule is not spelled out, so devorg takes the stricter reading for fields too."""
    return len(text.encode("utf-16-le", errors="surrogatepass")) // 2

def now() -> dt.datetime:
    """Current time, UTC, truncated to milliseconds as Salesforce stores it."""
    t = dt.datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


# The last datetime formatted and its text: a commit stamps every record it writes with one
# timestamp, so history, change events and results format the same value many times over.
_last_formatted: tuple[dt.datetime | None, str] = (None, "")


def format_datetime(value: dt.datetime) -> str:
    """Salesforce's REST datetime format."""
    global _last_formatted
    last = _last_formatted  # one read: another thread may replace the pair meanwhile
    if last[0] is not None and last[0] == value:
        return last[1]
    text = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{value.microsecond // 1000:03d}+0000"
    _last_formatted = (value, text)
    return text


def parse_datetime(text: str) -> dt.datetime | None:
    """Parse an ISO-8601 datetime as Salesforce accepts it; None when malformed."""
    m = _DT_RE.match(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    offset = dt.timedelta()
    if tz and tz != "Z":
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset = sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    try:
        naive = dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0), micro)
    except ValueError:
        return None
    return (naive - offset).replace(tzinfo=UTC)


def to_json(value: object) -> object:
    """A stored value as Salesforce's JSON renders it."""
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def to_csv(value: object) -> str:
    """A stored value as Bulk API 2.0 CSV renders it (null is the empty string)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return format_datetime(value)[:-5] + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return str(value)


def _json_type_error(f: FieldDef, value: object) -> FieldValueError:
    kind = {str: "VALUE_STRING", bool: "VALUE_TRUE" if value else "VALUE_FALSE",
            int: "VALUE_NUMBER_INT", float: "VALUE_NUMBER_FLOAT"}.get(type(value), "START_OBJECT")
    target = {"boolean": "boolean", "int": "int", "double": "double", "currency": "double",
              "percent": "double", "date": "date", "datetime": "datetime"}.get(f.type, "String")
    return FieldValueError(
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {target} from {kind} value {value} or request may be "
        "missing a required field",
        f.name,
    )


# Texts parsed to immutable values, by field type: a Bulk job sends the same datetime (one
# enrichment stamp) or number on row after row, and parsing one costs more than the rest of
# the row's field. Only successes are kept (errors name the field); bounded by clearing.
_PARSED: dict[str, dict[str, object]] = {t: {} for t in ("datetime", "date", *_NUMERIC)}
_PARSED_MAX = 4096


def parsed_cache(field_type: str) -> dict[str, object] | None:
    """The texts already parsed for a field type (text -> value; never None values), or
    None for a type whose texts are not cached. Read-only for callers: `coerce` fills it."""
    return _PARSED.get(field_type)


def coerce(f: FieldDef, value: object, *, from_csv: bool = False) -> object:
    """Convert an incoming value for field `f`; raises FieldValueError with Salesforce's code."""
    if type(value) is str:
        parsed = _PARSED.get(f.type)
        if parsed is not None and value not in ("", "#N/A"):
            try:
                return parsed[value]
            except KeyError:
                pass
            result = _coerce(f, value, from_csv=from_csv)
            if len(parsed) >= _PARSED_MAX:
                parsed.clear()
            parsed[value] = result
            return result
    return _coerce(f, value, from_csv=from_csv)


def _coerce(f: FieldDef, value: object, *, from_csv: bool = False) -> object:
    if value is None or (from_csv and value == ""):
        return None
    if from_csv and value == "#N/A":
        return None
    t = f.type
    if t == "complexvalue":
        return value
    if t == "boolean":
        if isinstance(value, bool):
            return value
        text = value.lower() if isinstance(value, str) else None
        if text in ("true", "false") or (from_csv and text in ("1", "0")):
            return text in ("true", "1")
        if from_csv:
            raise FieldValueError("INVALID_FIELD_FOR_INSERT_UPDATE",
                              f"{f.name}: invalid boolean: {value}", f.name)
        raise _json_type_error(f, value)
    if t in _NUMERIC:
        if isinstance(value, bool):
            raise _json_type_error(f, value)
        try:
            number = float(value) if not isinstance(value, int | float) else value
        except (TypeError, ValueError):
            if from_csv:
                raise FieldValueError("INVALID_TYPE_ON_FIELD_IN_RECORD",
                                  f"{f.name}: value not of required type: {value}", f.name)
            raise _json_type_error(f, value) from None
        if t == "int":
            if float(number) != int(number):
                raise FieldValueError("INVALID_TYPE_ON_FIELD_IN_RECORD",
                                  f"{f.name}: value not of required type: {value}", f.name)
            return int(number)
        return float(number)
    if t == "date":
        try:
            return dt.date.fromisoformat(str(value)[:10])
        except ValueError:
            if from_csv:
                raise FieldValueError("INVALID_TYPE_ON_FIELD_IN_RECORD",
                                  f"{f.name}: value not of required type: {value}", f.name)
            raise _json_type_error(f, value) from None
    if t == "datetime":
        parsed = parse_datetime(str(value)) if isinstance(value, str) else None
        if parsed is None:
            if from_csv:
                raise FieldValueError("INVALID_TYPE_ON_FIELD_IN_RECORD",
                                  f"{f.name}: value not of required type: {value}", f.name)
            raise _json_type_error(f, value)
        return parsed
    # string-like types, picklists, references
    if isinstance(value, bool | int | float) and not from_csv:
        value = str(value).lower() if isinstance(value, bool) else str(value)
    if not isinstance(value, str):
        raise _json_type_error(f, value)
    if f.restricted_picklist and value not in f.picklist:
        raise FieldValueError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                              f"{f.display_label}: bad value for restricted picklist field:"
                              f" {value}", f.name)
    if f.length and _utf16_units(value) > f.length:
        raise FieldValueError("STRING_TOO_LONG",
                          f"{f.display_label}: data value too large: {value} "
                          f"(max length={f.length})", f.name)
    return value
