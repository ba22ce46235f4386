"""Coercion of provider values to the Salesforce type and size of each Ily field.

Providers return plain Python values (str, int, float, lists, datetimes) in whatever
shape their source has: a CSV gives "1,200", a JSON API gives 1200.0, a DNS provider a
list of products. Salesforce rejects a whole record for one bad value
(STRING_TOO_LONG, NUMBER_OUTSIDE_VALID_RANGE, INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST),
so every value is made to fit its field here, or dropped to None (which clears it).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from ilyd.enrich.fields import FieldType, IlyField

__all__ = ["LIST_SEPARATOR", "coerce_value", "format_datetime", "sf_length"]

# How multi-valued data (products, services) is joined into one text field.
LIST_SEPARATOR = "; "


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The second last formatted, as (days, seconds) since the epoch (exact integers, unlike a
# float timestamp), and its text up to the milliseconds: every record enriched in that
# second is stamped in it, and strftime was most of a stamp's cost. One tuple, swapped
# whole, so threads never see a second paired with another's text.
_last_second: tuple[tuple[int, int] | None, str] = (None, "")


def format_datetime(moment: datetime) -> str:
    """Salesforce's DateTime text form, in UTC with milliseconds (naive means UTC)."""
    global _last_second
    if moment.tzinfo is not UTC:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
    since = moment - _EPOCH
    second = (since.days, since.seconds)
    known = _last_second
    if known[0] != second:
        known = _last_second = (second, moment.strftime("%Y-%m-%dT%H:%M:%S."))
    return known[1] + f"{moment.microsecond // 1000:03d}Z"


def _text(value: object) -> str | None:
    if value is None or isinstance(value, bool):
        return None if value is None else ("true" if value else "false")
    if isinstance(value, str):
        text = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            return None
        text = str(int(value)) if value.is_integer() else repr(value)
    elif isinstance(value, int | Decimal):
        text = str(value)
    elif isinstance(value, Mapping):
        return None
    elif isinstance(value, Iterable):
        parts = (_text(item) for item in value)
        text = LIST_SEPARATOR.join(dict.fromkeys(p for p in parts if p))  # keeps order, no dupes
    else:
        text = str(value)
    text = _UNWANTED.sub("", text).strip()
    return text or None


# NUL is rejected by Salesforce's XML/JSON layer; other control characters except tab
# and newline have no business in a company attribute either. A lone surrogate (JSON can
# carry "\ud800") is no character at all: it cannot even be encoded as UTF-8.
_UNWANTED = re.compile("[\x00-\x08\x0b-\x1f\ud800-\udfff]")


def sf_length(text: str) -> int:
    """A text's length as Salesforce counts it: in UTF-16 code units, so a character
    outside the Basic Multilingual Plane (an emoji, a rare CJK ideograph) counts twice
    (https://help.salesforce.com/s/articleView?id=005166849&type=1)."""
    if text.isascii():
        return len(text)
    return len(text) + sum(1 for ch in text if ch > "\uffff")


def truncate_units(text: str, max_chars: int) -> str:
    """`text` cut to at most `max_chars` as Salesforce counts them (sf_length), never
    inside a character."""
    if len(text) <= max_chars and sf_length(text) <= max_chars:
        return text
    units = 0
    for index, ch in enumerate(text):
        units += 2 if ch > "\uffff" else 1
        if units > max_chars:
            return text[:index].rstrip()
    return text


def _join_fitting(value: Iterable[object], max_chars: int | None) -> str | None:
    """Join list items, keeping only whole items that fit (no half product name)."""
    joined = ""
    for part in dict.fromkeys(p for p in (_text(item) for item in value) if p):
        candidate = f"{joined}{LIST_SEPARATOR}{part}" if joined else part
        if max_chars is not None and sf_length(candidate) > max_chars:
            if not joined:  # a single over-long item: keep what fits of it
                joined = truncate_units(part, max_chars)
            break
        joined = candidate
    return joined or None


def _decimal(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, str):
        cleaned = value.strip().replace(",", "").replace("_", "").replace(" ", "")
        cleaned = cleaned.removeprefix("$").removesuffix("+")
        if not cleaned:
            return None
        try:
            number = Decimal(cleaned)
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _number(value: object, field: IlyField) -> int | float | None:
    number = _decimal(value)
    if number is None:
        return None
    scale = field.scale or 0
    precision = field.precision or 18
    # Salesforce's precision counts all digits, so the integer part has precision - scale.
    # Checked before rounding too: quantize() of a huge number exceeds Decimal's context.
    limit = Decimal(10) ** (precision - scale)
    if abs(number) >= limit:
        return None
    rounded = number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_EVEN)
    if abs(rounded) >= limit:
        return None
    return int(rounded) if scale == 0 else float(rounded)


def _datetime(value: object) -> str | None:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return format_datetime(datetime(value.year, value.month, value.day, tzinfo=UTC))
    if isinstance(value, str) and value.strip():
        try:
            return format_datetime(datetime.fromisoformat(value.strip()))
        except ValueError:
            return None
    return None


@functools.cache
def _max_chars(field: IlyField) -> int | None:
    return field.max_chars


def coerce_value(field: IlyField, value: object) -> object:
    """`value` made to fit `field`'s type and size, or None when it cannot be.

    Text types are joined (lists), cleaned of control characters and truncated to the
    field's length; numbers are parsed ("1,200", "$5000"), rounded to the scale and
    dropped when outside the precision; DateTimes become Salesforce's UTC text form;
    picklist values must be one of the field's values.
    """
    if value is None:
        return None  # what every branch below makes of it; most provider values are None
    if field.type is FieldType.PICKLIST:
        text = _text(value)
        return text if text in field.picklist_values else None
    if field.type in (FieldType.NUMBER, FieldType.CURRENCY):
        return _number(value, field)
    if field.type is FieldType.DATETIME:
        return _datetime(value)
    max_chars = _max_chars(field)
    if isinstance(value, Iterable) and not isinstance(value, str | bytes | Mapping):
        return _join_fitting(value, max_chars)
    text = _text(value)
    if text is None:
        return None
    return truncate_units(text, max_chars) if max_chars is not None else text
