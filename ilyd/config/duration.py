"""Durations in the config: `"30d"`, `"6h"`, `"90m"`, `"45s"` or a number of seconds.

Long periods (how old a record's enrichment may get) read better in days than in
seconds, so such keys take a number with a unit; a bare number is seconds, as every
other time key of the file.
"""

from __future__ import annotations

import re
from typing import Any

from ilyd.config.schema import Converter, type_name

__all__ = ["duration", "format_duration"]

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")


def duration(minimum: float = 0.0, maximum: float | None = None, *,
             zero: bool = False) -> Converter:
    """Seconds from "30d" / "6h" / "90m" / "45s" / a number; within [minimum, maximum],
    or 0 when `zero` (0 turns the feature off)."""

    def convert(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError(f'must be a duration like "30d", "6h", "90m", "45s" or a number'
                             f" of seconds (got {type_name(value)})")
        if isinstance(value, int | float):
            seconds = float(value)
        elif isinstance(value, str):
            if value.strip() == "0":
                seconds = 0.0
            else:
                found = _PATTERN.match(value)
                if found is None:
                    raise ValueError(f'must be a duration like "30d", "6h", "90m", "45s" or a'
                                     f" number of seconds (got {value!r})")
                seconds = float(found[1]) * _UNITS[found[2]]
        else:
            raise ValueError(f'must be a duration like "30d", "6h", "90m", "45s" or a number'
                             f" of seconds (got {type_name(value)})")
        if zero and seconds == 0:
            return 0.0
        if seconds < minimum:
            raise ValueError(f"must be at least {format_duration(minimum)}"
                             + (" (or 0 to turn it off)" if zero else "")
                             + f" (got {value!r})")
        if maximum is not None and seconds > maximum:
            raise ValueError(f"must be at most {format_duration(maximum)} (got {value!r})")
        return seconds

    return convert


def format_duration(seconds: float) -> str | float:
    """The shortest exact way to write `seconds` back ("30d", "6h", "90m", "45s"; 0 as 0)."""
    if seconds == 0:
        return 0
    for unit in ("d", "h", "m", "s"):
        count = seconds / _UNITS[unit]
        if count == int(count):
            return f"{int(count)}{unit}"
    return seconds
