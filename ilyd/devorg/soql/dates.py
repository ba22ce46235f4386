"""Relative date literals (TODAY, LAST_N_DAYS:n …) as half-open [start, end) date ranges.

devorg's users live in UTC, so "today" is the UTC date. Weeks start on Sunday (the en_US
locale Salesforce uses by default); quarters are calendar quarters.
"""

from __future__ import annotations

import datetime as dt


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def date_range(keyword: str, n: int | None, today: dt.date) -> tuple[dt.date, dt.date]:
    """The [start, end) dates ``keyword`` (with ``:n`` when it takes one) stands for."""
    one = dt.timedelta(days=1)
    week = today - dt.timedelta(days=(today.weekday() + 1) % 7)
    month = today.replace(day=1)
    quarter = dt.date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
    year = dt.date(today.year, 1, 1)
    count = n or 0
    ranges: dict[str, tuple[dt.date, dt.date]] = {
        "YESTERDAY": (today - one, today),
        "TODAY": (today, today + one),
        "TOMORROW": (today + one, today + 2 * one),
        "LAST_WEEK": (week - 7 * one, week),
        "THIS_WEEK": (week, week + 7 * one),
        "NEXT_WEEK": (week + 7 * one, week + 14 * one),
        "LAST_MONTH": (_add_months(month, -1), month),
        "THIS_MONTH": (month, _add_months(month, 1)),
        "NEXT_MONTH": (_add_months(month, 1), _add_months(month, 2)),
        # "Starts 00:00:00 of the current day and continues for the last 90 days":
        # today is included, so the range spans n + 1 calendar days.
        "LAST_90_DAYS": (today - 90 * one, today + one),
        "NEXT_90_DAYS": (today + one, today + 91 * one),
        "LAST_QUARTER": (_add_months(quarter, -3), quarter),
        "THIS_QUARTER": (quarter, _add_months(quarter, 3)),
        "NEXT_QUARTER": (_add_months(quarter, 3), _add_months(quarter, 6)),
        "LAST_YEAR": (year.replace(year=year.year - 1), year),
        "THIS_YEAR": (year, year.replace(year=year.year + 1)),
        "NEXT_YEAR": (year.replace(year=year.year + 1), year.replace(year=year.year + 2)),
        "LAST_N_DAYS": (today - count * one, today + one),
        "NEXT_N_DAYS": (today + one, today + (count + 1) * one),
        "N_DAYS_AGO": (today - count * one, today - (count - 1) * one),
        "N_DAYS_FROM_NOW": (today + count * one, today + (count + 1) * one),
        "LAST_N_WEEKS": (week - 7 * count * one, week),
        "NEXT_N_WEEKS": (week + 7 * one, week + 7 * (count + 1) * one),
        "LAST_N_MONTHS": (_add_months(month, -count), month),
        "NEXT_N_MONTHS": (_add_months(month, 1), _add_months(month, count + 1)),
        "LAST_N_YEARS": (year.replace(year=year.year - count), year),
        "NEXT_N_YEARS": (
            year.replace(year=year.year + 1), year.replace(year=year.year + count + 1)
        ),
    }
    return ranges[keyword]


def as_datetimes(span: tuple[dt.date, dt.date]) -> tuple[dt.datetime, dt.datetime]:
    """The same range as UTC midnights, for comparing with datetime fields."""
    start, end = span
    return (
        dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC),
        dt.datetime(end.year, end.month, end.day, tzinfo=dt.UTC),
    )
