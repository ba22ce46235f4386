"""Per-org API usage, read from the `Sforce-Limit-Info` header of every REST response.

Salesforce reports the org's rolling 24-hour call count on (nearly) every response as
`api-usage=18/5000`, optionally followed by `; per-app-api-usage=17/250(appName=x)`.
Reading it is free, unlike `GET /limits`, which itself costs a call.
"""

from __future__ import annotations

import contextlib
import re
import threading
from typing import NamedTuple

from ilyd import metrics

__all__ = ["ApiUsage", "Usage", "parse_limit_info"]

# The leading `(?:^|[^-])` keeps `per-app-api-usage` from matching as the org's usage.
_ORG_USAGE_RE = re.compile(r"(?:^|[^-])\bapi-usage=(\d+)/(\d+)")


class Usage(NamedTuple):
    """Calls used in the rolling 24-hour window and the org's daily allowance."""

    used: int
    max: int

    @property
    def ratio(self) -> float:
        """used / max, 0 when the org reports no allowance."""
        return self.used / self.max if self.max else 0.0


def parse_limit_info(header: str | None) -> Usage | None:
    """Return the org-wide usage in a `Sforce-Limit-Info` value, or None if absent."""
    if not header:
        return None
    match = _ORG_USAGE_RE.search(header)
    if not match:
        return None
    return Usage(int(match.group(1)), int(match.group(2)))


class ApiUsage:
    """The latest API usage seen for one org; exported as `ilyd_sf_api_usage_ratio{org}`.

    Thread-safe: every request thread of the org reports into the same instance.
    `export=False` keeps the per-org series off (`[metrics] per_org = false`).
    """

    def __init__(self, org: str, *, export: bool = True) -> None:
        self.org = org
        self._export = export
        self._lock = threading.Lock()
        self._usage: Usage | None = None
        # Responses that carried the header: the calls this client made that Salesforce
        # counts (what a run with a share of its own, the refresh, adds up).
        self._calls = 0

    def observe(self, header: str | None) -> Usage | None:
        """Record the usage in a `Sforce-Limit-Info` header value (ignored if absent)."""
        usage = parse_limit_info(header)
        if usage is not None:
            with self._lock:
                self._calls += 1
            self.record(usage)
        return usage

    @property
    def calls(self) -> int:
        """How many counted calls this client has made (responses with the header)."""
        with self._lock:
            return self._calls

    def record(self, usage: Usage) -> None:
        """Record usage learnt another way (e.g. from `GET /limits`)."""
        with self._lock:
            self._usage = usage
        if self._export:
            metrics.SF_API_USAGE_RATIO.labels(org=self.org).set(usage.ratio)

    @property
    def current(self) -> Usage | None:
        """The last usage seen, or None before the first response."""
        with self._lock:
            return self._usage

    def forget(self) -> None:
        """Drop the org's series, e.g. when the org leaves the config."""
        with self._lock:
            self._usage = None
        if self._export:
            with contextlib.suppress(KeyError):
                metrics.SF_API_USAGE_RATIO.remove(self.org)
