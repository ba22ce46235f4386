"""A generic provider for a company-data vendor's HTTP API (Clearbit-, HG-, BuiltWith-like).

The vendor is described by settings: a URL template (GET) or JSON body template (POST),
where the API key goes, how fast and how wide we may call, and which response paths fill
which Ily fields. Statuses follow what commercial company-data APIs do:

    200            values (or not found when the mapped fields are all empty)
    404            not found, cached negatively by the caller
    202 / queued   retryable ProviderError(reason="queued"): the vendor is still looking
    429            retryable ProviderError(reason="rate_limited", retry_after=…); every
                   caller pauses for the vendor's Retry-After
    5xx, timeouts  retried with exponential backoff, then retryable ProviderError
    401/403/402    not retryable; the provider turns FAILING (see `health`) until the
                   credentials are fixed and the org restarted
    other 4xx      not retryable (the vendor rejected this domain)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, NoReturn
from urllib.parse import quote

import requests
import structlog
import urllib3
from requests.adapters import HTTPAdapter

from ilyd.backoff import Backoff
from ilyd.enrich.http_paths import field_value, parse_path, render_body, resolve
from ilyd.enrich.http_throttle import Pause, TokenBucket
from ilyd.enrich.provider import Lookup
from ilyd.enrich.provider_health import HEALTHY, HealthState, ProviderHealth
from ilyd.errors import ConfigError, ProviderError, transient_status
from ilyd.metrics import (
    PROVIDER_FAILURES,
    PROVIDER_REQUEST_DURATION,
    PROVIDER_REQUESTS,
    prepare_provider,
)

log = structlog.get_logger(__name__)

# Body `status` values vendors use for "lookup accepted, answer later" (Clearbit-style).
_QUEUED_STATUSES = frozenset({"queued", "pending"})
# Pause after a 429 that carries no usable Retry-After.
_DEFAULT_RATE_LIMIT_PAUSE = 1.0
# A company-data answer is a few KiB and a batch of them far less than this; more is a
# url pointing at a download, or a hostile vendor, and would be held in memory whole.
MAX_BODY_BYTES = 8 << 20


@dataclass(frozen=True)
class HttpBatchSettings:
    """A vendor endpoint that looks up N domains per call.

    `url` may hold `{domains}` (comma-joined, each URL-encoded); a `body` template string
    "{domains}" becomes the JSON list. `results_path` leads to the list of results and
    `match_path` (inside one result) to the domain it answers for.
    """

    url: str
    max_domains: int = 25
    method: str = "GET"
    body: Mapping[str, object] | None = None
    results_path: str = ""
    match_path: str = "domain"


@dataclass(frozen=True)
class HttpSettings:
    """One HTTP vendor. `secret` is the resolved API key (never logged, never in repr)."""

    name: str
    url: str
    fields: Mapping[str, str]
    method: str = "GET"
    body: Mapping[str, object] | None = None
    result_path: str = ""
    status_path: str = "status"
    auth_header: str | None = None
    auth_query: str | None = None
    auth_prefix: str = ""
    secret: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float = 10.0
    requests_per_second: float = 5.0
    max_concurrency: int = 4
    max_attempts: int = 4
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 8.0
    batch: HttpBatchSettings | None = None


# Every reason a request can fail with (ilyd_provider_failures_total), as classified below.
FAILURE_REASONS = ("timeout", "connection", "server", "rate_limited", "queued", "auth",
                   "rejected", "bad_response")


class _TransientError(Exception):
    """A failure worth retrying right away with backoff (5xx, timeout, connection)."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(detail)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def _same_domain(reported: object, domain: str) -> bool:
    """Vendors echo the domain back as a bare host, a URL or with www.; compare leniently."""
    if not isinstance(reported, str):
        return False
    host = reported.strip().lower().removeprefix("https://").removeprefix("http://")
    host = host.split("/", 1)[0].removeprefix("www.").rstrip(".")
    return host == domain.lower()


class HttpProvider:
    """Looks companies up in a vendor's HTTP API. Safe to call from many threads."""

    def __init__(self, settings: HttpSettings, session: requests.Session | None = None) -> None:
        self.settings = settings
        self.name = settings.name
        problems = []
        if settings.method not in ("GET", "POST"):
            problems.append(f"method must be GET or POST, not {settings.method!r}")
        if settings.auth_header and settings.auth_query:
            problems.append("set auth_header or auth_query, not both")
        if (settings.auth_header or settings.auth_query) and not settings.secret:
            problems.append("an auth location is set but the secret resolved to nothing")
        if not settings.fields:
            problems.append("fields maps no Ily field to a response path")
        if problems:
            raise ConfigError([f"provider {settings.name!r}: {p}" for p in problems])
        self._fields = {name: parse_path(path) for name, path in settings.fields.items()}
        self._result_path = parse_path(settings.result_path)
        self._status_path = parse_path(settings.status_path)
        batch = settings.batch
        self._batch_results = parse_path(batch.results_path) if batch else ()
        self._batch_match = parse_path(batch.match_path) if batch else ()
        self._bucket = TokenBucket(settings.requests_per_second)
        self._slots = threading.BoundedSemaphore(settings.max_concurrency)
        self._pause = Pause()
        self._health = HEALTHY
        self._health_lock = threading.Lock()
        self._session = session or requests.Session()
        adapter = HTTPAdapter(pool_maxsize=settings.max_concurrency)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        prepare_provider(self.name, FAILURE_REASONS)

    @property
    def health(self) -> ProviderHealth:
        """OK, or FAILING with the message an admin needs (bad key, no credits)."""
        return self._health

    def lookup(self, domain: str) -> Lookup:
        """Look one domain up; raise ProviderError on failure."""
        s = self.settings
        url = s.url.replace("{domain}", quote(domain, safe=""))
        body = render_body(s.body, domain) if s.body is not None else None
        data = self._call(s.method, url, body, domain)
        if data is None:
            return Lookup(provider=self.name, domain=domain, found=False)
        self._raise_if_queued(data, domain)
        return self._to_lookup(domain, resolve(data, self._result_path))

    def lookup_many(self, domains: Iterable[str]) -> Mapping[str, Lookup | ProviderError]:
        """Look several domains up, through the batch endpoint when one is configured."""
        wanted = list(dict.fromkeys(domains))
        results: dict[str, Lookup | ProviderError] = {}
        batch = self.settings.batch
        if batch is None:
            for domain in wanted:
                try:
                    results[domain] = self.lookup(domain)
                except ProviderError as exc:
                    results[domain] = exc
            return results
        for start in range(0, len(wanted), batch.max_domains):
            chunk = wanted[start:start + batch.max_domains]
            try:
                results.update(self._lookup_batch(batch, chunk))
            except ProviderError as exc:
                results.update(dict.fromkeys(chunk, exc))
        return results

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._session.close()

    # -- internals -------------------------------------------------------------------------

    def _lookup_batch(self, batch: HttpBatchSettings, chunk: Sequence[str]) -> dict[str, Lookup]:
        joined = ",".join(quote(d, safe="") for d in chunk)
        url = batch.url.replace("{domains}", joined)
        body = render_body(batch.body, None, chunk) if batch.body is not None else None
        label = f"{len(chunk)} domains"
        data = self._call(batch.method, url, body, label)
        found: dict[str, object] = {}
        if data is not None:
            self._raise_if_queued(data, label)
            items = resolve(data, self._batch_results)
            for item in items if isinstance(items, list) else ():
                reported = resolve(item, self._batch_match)
                for domain in chunk:
                    if domain not in found and _same_domain(reported, domain):
                        found[domain] = item
        return {d: self._to_lookup(d, resolve(found.get(d), self._result_path)) for d in chunk}

    def _to_lookup(self, domain: str, record: object) -> Lookup:
        values: dict[str, object] = {}
        if record is not None:
            for name, steps in self._fields.items():
                value = field_value(resolve(record, steps))
                if value is not None:
                    values[name] = value
        # A 200 that fills none of our fields tells the record nothing: treat as not found.
        return Lookup(provider=self.name, domain=domain, found=bool(values), values=values)

    def _raise_if_queued(self, data: object, what: str) -> None:
        status = resolve(data, self._status_path)
        if isinstance(status, str) and status.strip().lower() in _QUEUED_STATUSES:
            self._fail(
                "queued", f"provider {self.name!r} queued the lookup of {what}; it will be "
                "asked again later", retryable=True, retry_after=None,
            )

    def _call(self, method: str, url: str, body: object, what: str) -> Any:
        """Send one logical request with retries; decoded JSON, or None for 404."""
        s = self.settings
        for attempt in range(s.max_attempts):
            try:
                return self._attempt(method, url, body, what)
            except _TransientError as exc:
                if attempt + 1 >= s.max_attempts:
                    # Each attempt was counted as a failure already.
                    raise ProviderError(
                        f"provider {self.name!r} failed for {what} after {s.max_attempts} "
                        f"attempts ({exc.detail}); the record waits and is tried again later",
                        retryable=True, reason=exc.reason,
                    ) from exc
                # Jittered, so many workers do not retry in lockstep.
                time.sleep(Backoff(s.backoff_initial_seconds, s.backoff_max_seconds)
                           .delay(attempt + 1))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _attempt(self, method: str, url: str, body: object, what: str) -> Any:
        s = self.settings
        health = self._health
        if not health.ok:
            raise ProviderError(health.message or "provider failing", retryable=False,
                                reason="failing")
        paused = self._pause.remaining()
        if paused > 0:
            raise ProviderError(
                f"provider {self.name!r} asked us to slow down; pausing {paused:.1f}s",
                retryable=True, reason="rate_limited", retry_after=paused,
            )
        headers = dict(s.headers)
        params: dict[str, str] = {}
        if s.auth_header and s.secret:
            headers[s.auth_header] = s.auth_prefix + s.secret
        elif s.auth_query and s.secret:
            params[s.auth_query] = s.secret
        self._bucket.acquire()
        with self._slots:
            PROVIDER_REQUESTS.labels(self.name).inc()
            started = time.monotonic()
            try:
                resp = self._session.request(
                    method, url, params=params or None, headers=headers,
                    json=body if method == "POST" else None, timeout=s.timeout_seconds,
                    stream=True,
                )
            except requests.Timeout as exc:
                PROVIDER_FAILURES.labels(self.name, "timeout").inc()
                raise _TransientError("timeout", f"no answer within {s.timeout_seconds}s") from exc
            except requests.RequestException as exc:
                PROVIDER_FAILURES.labels(self.name, "connection").inc()
                # The exception text can hold the URL, and with it a query-string key.
                raise _TransientError("connection", type(exc).__name__) from exc
            finally:
                PROVIDER_REQUEST_DURATION.labels(self.name).observe(time.monotonic() - started)
            try:
                return self._classify(resp, what, started + s.timeout_seconds)
            finally:
                resp.close()

    def _read_body(self, resp: requests.Response, deadline: float, what: str) -> bytes:
        """The body, up to MAX_BODY_BYTES, complete by `deadline`: requests' timeout
        bounds each socket read, so a vendor trickling a byte at a time would otherwise
        hold a worker for as long as it likes."""
        body = bytearray()
        try:
            while chunk := resp.raw.read1(1 << 16, decode_content=True):
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    self._fail(
                        "bad_response", f"provider {self.name!r} answered the lookup of "
                        f"{what} with more than {MAX_BODY_BYTES >> 20} MiB (larger than any"
                        " company record); check the provider's url", retryable=False,
                    )
                if time.monotonic() > deadline:
                    PROVIDER_FAILURES.labels(self.name, "timeout").inc()
                    raise _TransientError(
                        "timeout", f"answer not complete within {self.settings.timeout_seconds}s")
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            timed_out = isinstance(exc, urllib3.exceptions.TimeoutError | TimeoutError)
            reason = "timeout" if timed_out else "connection"
            PROVIDER_FAILURES.labels(self.name, reason).inc()
            raise _TransientError(reason, type(exc).__name__) from exc
        return bytes(body)

    def _classify(self, resp: requests.Response, what: str, deadline: float) -> Any:
        status = resp.status_code
        log.debug("provider_response", provider=self.name, lookup=what, status=status)
        if status == 404:
            return None
        if status == 202:
            self._fail(
                "queued", f"provider {self.name!r} queued the lookup of {what} (HTTP 202); "
                "it will be asked again later", retryable=True,
                retry_after=parse_retry_after(resp.headers.get("Retry-After")),
            )
        if status == 429:
            wait = parse_retry_after(resp.headers.get("Retry-After"))
            wait = _DEFAULT_RATE_LIMIT_PAUSE if wait is None else wait
            self._pause.extend(wait)
            self._fail(
                "rate_limited", f"provider {self.name!r} rate-limited us (HTTP 429); "
                f"retry after {wait:.1f}s", retryable=True, retry_after=wait,
            )
        if status in (401, 403, 402):
            problem = ("has no credits left (HTTP 402): top up the account"
                       if status == 402 else
                       f"refused our credentials (HTTP {status}): check the API key its "
                       "secret reference points to and that the plan allows this endpoint")
            message = (f"enrichment provider {self.name!r} {problem}, then run "
                       "`ilyd ctl restart ORG` for each org using it (a new key file is"
                       " read at org start); ilyd stops calling it until then")
            with self._health_lock:
                if self._health.ok:
                    log.error("provider_failing", provider=self.name, status=status)
                self._health = ProviderHealth(HealthState.FAILING, message)
            self._fail("auth", message, retryable=False)
        if transient_status(status):
            PROVIDER_FAILURES.labels(self.name, "server").inc()
            raise _TransientError("server", f"HTTP {status}")
        if status >= 400:
            self._fail(
                "rejected", f"provider {self.name!r} rejected the lookup of {what} "
                f"(HTTP {status}); it will not be retried", retryable=False,
            )
        body = self._read_body(resp, deadline, what)
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            # Not JSON, not UTF-8/16/32, or nested deeper than the parser recurses.
            self._fail(
                "bad_response", f"provider {self.name!r} answered the lookup of {what} with "
                f"HTTP {status} but no JSON; check the provider's url", retryable=False,
            )

    def _fail(self, reason: str, message: str, *, retryable: bool,
              retry_after: float | None = None) -> NoReturn:
        PROVIDER_FAILURES.labels(self.name, reason).inc()
        raise ProviderError(message, retryable=retryable, reason=reason, retry_after=retry_after)
