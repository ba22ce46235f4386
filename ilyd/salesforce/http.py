"""The HTTP plumbing every Salesforce call goes through.

One `OrgHttp` per org owns the org's `requests.Session` (TLS verification always on),
adds the bearer token, refreshes it once on INVALID_SESSION_ID, retries with jittered
exponential backoff only where a retry cannot duplicate a write, reads
`Sforce-Limit-Info`, counts requests, and turns every failure into an `ilyd.errors`
exception carrying Salesforce's status, errorCode, message and fields.

Every call's answer is an `ilyd.salesforce.response.HttpResponse`, read whole; only
`OrgHttp.stream` (Bulk results, read row by row off the socket) returns requests' own
`Response`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests
import structlog

from ilyd import __version__, metrics
from ilyd.backoff import Backoff, pause
from ilyd.errors import (
    AuthError,
    RequestLimitError,
    SalesforceError,
    SalesforceUnavailableError,
    TlsError,
    idempotent,
    transient_status,
)
from ilyd.salesforce.direct import DirectSession
from ilyd.salesforce.limits import ApiUsage
from ilyd.salesforce.response import HttpResponse
from ilyd.salesforce.token import AccessTokens
from ilyd.salesforce.versions import DEFAULT_API_VERSION

__all__ = [
    "OrgHttp",
    "RetryPolicy",
    "error_from_response",
    "make_session",
    "send_with_retry",
]

log = structlog.get_logger(__name__)

# An answer read whole, or a streamed one (OrgHttp.stream) whose body holds the connection.
_R = TypeVar("_R", HttpResponse, requests.Response)


def make_session(ca_file: str | Path | None = None) -> requests.Session:
    """Return a session that verifies TLS, against `ca_file` (a private CA) if given."""
    session = requests.Session()
    # Verification is never switched off; a private CA is added, not a bypass.
    session.verify = str(ca_file) if ca_file else True
    session.headers["User-Agent"] = f"ilyd/{__version__}"
    return session


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a transient failure.

    Delays grow as base_delay · 2^n, capped at max_delay, with equal jitter
    (`ilyd.backoff`) so that many orgs hitting the same outage do not retry in lockstep.
    """

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, retry: int, retry_after: str | None = None) -> float:
        """Seconds to wait before retry number `retry` (0-based)."""
        wait = Backoff(self.base_delay, self.max_delay).delay(retry + 1)
        if retry_after and retry_after.isdigit():
            wait = max(wait, min(float(retry_after), self.max_delay))
        return wait


def _reason_for(status: int | None, error_code: str | None) -> str:
    if error_code == "REQUEST_LIMIT_EXCEEDED":
        return "limit"
    if status is None:
        return "connection"
    if status == 401:
        return "session"
    if status >= 500:
        return "server"
    return "client"


def _parse_error_body(response: HttpResponse) -> tuple[str, str | None, tuple[str, ...]]:
    """Return (message, errorCode, fields) from any Salesforce error body shape."""
    try:
        body: Any = response.json()
    except ValueError:
        text = response.text.strip()
        return (text[:500] or response.reason or f"HTTP {response.status_code}", None, ())
    # REST: [{"message","errorCode","fields"}]; OAuth: {"error","error_description"};
    # Bulk 2.0 uses the REST array too.
    if isinstance(body, list) and body and isinstance(body[0], Mapping):
        first = body[0]
        return (
            str(first.get("message", "")),
            first.get("errorCode") or first.get("statusCode"),
            tuple(first.get("fields") or ()),
        )
    if isinstance(body, Mapping):
        if "error" in body:
            return (str(body.get("error_description", "")), str(body["error"]), ())
        if "errorCode" in body:
            return (str(body.get("message", "")), str(body["errorCode"]), ())
    return (str(body)[:500], None, ())


def error_from_response(response: HttpResponse, what: str) -> SalesforceError:
    """Translate a failed response into the matching `SalesforceError` subclass.

    `what` names the operation and its target ("query on Account") for the message.
    """
    message, code, fields = _parse_error_body(response)
    status = response.status_code
    if code == "REQUEST_LIMIT_EXCEEDED":
        return RequestLimitError(
            f"{what}: the org's API allowance is spent ({message}); "
            "work resumes when the rolling 24-hour window frees calls",
            status=status, error_code=code, fields=fields,
        )
    if status == 401:
        return AuthError(
            f"{what}: Salesforce refused the session even after a token refresh ({message})",
            status=status, error_code=code, fields=fields,
        )
    if status >= 500:
        return SalesforceUnavailableError(
            f"{what}: Salesforce answered HTTP {status} ({message}); try again later",
            status=status, error_code=code, fields=fields,
        )
    return SalesforceError(f"{what}: {message}", status=status, error_code=code, fields=fields)


def send_with_retry(
    session: requests.Session | DirectSession,
    method: str,
    url: str,
    *,
    op: str,
    retry: RetryPolicy,
    retry_safe: bool,
    timeout: float,
    **kwargs: Any,
) -> HttpResponse:
    """Send one request, retrying connection errors and 5xx answers when `retry_safe`.

    Returns the last response (any status), its body read; raises
    SalesforceUnavailableError when the connection keeps failing. Counts
    `ilyd_sf_requests_total{op}` per attempt and times each answered attempt
    (`ilyd_sf_request_duration_seconds{op}`).
    """
    # requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override `session.verify`
    # (psf/requests#3829); passing it per request keeps a configured ca_file in force.
    kwargs.setdefault("verify", session.verify)
    if isinstance(session, DirectSession):
        return _retrying(lambda: session.request(method, url, timeout=timeout, **kwargs),
                         op=op, url=url, retry=retry, retry_safe=retry_safe)
    return _retrying(
        lambda: HttpResponse.from_requests(
            session.request(method, url, timeout=timeout, **kwargs)),
        op=op, url=url, retry=retry, retry_safe=retry_safe)


def _retrying(send: Callable[[], _R], *, op: str, url: str, retry: RetryPolicy,
              retry_safe: bool) -> _R:
    """`send_with_retry`'s loop around one way of sending."""
    attempt = 0
    requests_sent, duration = _op_metrics(op)
    while True:
        requests_sent.inc()
        sent = time.monotonic()
        try:
            response = send()
        except requests.exceptions.SSLError as exc:
            # An untrusted certificate does not heal by retrying.
            metrics.SF_REQUEST_FAILURES.labels(op=op, reason="tls").inc()
            raise TlsError(
                f"{op}: TLS verification of {_origin(url)} failed ({exc}); if the server "
                "uses a private CA, set ca_file to that CA's certificate"
            ) from exc
        except requests.RequestException as exc:
            if retry_safe and attempt + 1 < retry.attempts:
                wait = retry.delay(attempt)
                log.info("sf_request_retry", op=op, error=type(exc).__name__, wait_s=round(wait, 3))
                metrics.SF_REQUEST_RETRIES.labels(op=op).inc()
                attempt += 1
                pause(wait, op)
                continue
            metrics.SF_REQUEST_FAILURES.labels(op=op, reason="connection").inc()
            raise SalesforceUnavailableError(
                f"{op}: could not reach Salesforce at {_origin(url)} ({exc}); "
                "check the network and the instance URL, ilyd retries later"
            ) from exc
        duration.observe(time.monotonic() - sent)
        if transient_status(response.status_code) and retry_safe and attempt + 1 < retry.attempts:
            wait = retry.delay(attempt, response.headers.get("Retry-After"))
            log.info("sf_request_retry", op=op, status=response.status_code, wait_s=round(wait, 3))
            metrics.SF_REQUEST_RETRIES.labels(op=op).inc()
            _release(response)
            attempt += 1
            pause(wait, op)
            continue
        return response


@functools.lru_cache(maxsize=256)
def _op_metrics(op: str) -> tuple[Any, Any]:
    """The per-attempt counter and timer of `op`: looked up once per op name (a label
    lookup takes a lock and hashes the labels), since ops are a fixed handful."""
    return metrics.SF_REQUESTS.labels(op=op), metrics.SF_REQUEST_DURATION.labels(op=op)


def _release(response: HttpResponse | requests.Response) -> None:
    # A streamed answer holds its connection until closed; one read whole holds nothing.
    if isinstance(response, requests.Response):
        response.close()


def _origin(url: str) -> str:
    # Only scheme://host:port: paths may carry query text, never worth logging.
    parts = url.split("/", 3)
    return "/".join(parts[:3])


class OrgHttp:
    """Authenticated, retrying, translating HTTP access to one org's instance.

    Shared by RestClient and BulkClient of the same org; thread-safe (requests.Session
    is safe for concurrent requests through its connection pool, DirectSession pools
    its kept connections).
    """

    def __init__(
        self,
        org: str,
        token_provider: AccessTokens,
        *,
        api_version: str = DEFAULT_API_VERSION,
        ca_file: str | Path | None = None,
        timeout: float = 120.0,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        export_usage: bool = True,
    ) -> None:
        self.org = org
        self.tokens = token_provider
        self.api_version = api_version.removeprefix("v")
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.session = session or make_session(ca_file)
        # Plain calls (the Collections writes above all) skip requests' per-call work.
        self._sender = DirectSession(self.session)
        self.usage = ApiUsage(org, export=export_usage)

    def close(self) -> None:
        """Close the org's connections."""
        self._sender.close()

    def url(self, path: str, instance_url: str) -> str:
        """Absolute URL for a full URL, an absolute path, or a path under the data API."""
        if path.startswith(("http://", "https://")):
            return path
        if path.startswith("/"):
            return instance_url.rstrip("/") + path
        return f"{instance_url.rstrip('/')}/services/data/v{self.api_version}/{path}"

    def request(
        self,
        op: str,
        method: str,
        path: str,
        *,
        what: str | None = None,
        retry_safe: bool | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> HttpResponse:
        """Send an authenticated request and return its successful (2xx) response.

        `retry_safe` defaults by method (POST is unsafe). A 401 refreshes the shared
        token once and resends — safe for any method, Salesforce processed nothing.
        Raises the `SalesforceError` subclass matching the failure.
        """
        method = method.upper()
        safe = idempotent(method) if retry_safe is None else retry_safe
        return self._authorized(
            op, path, what or op, headers,
            lambda url, sent: send_with_retry(
                self._sender, method, url, op=op, retry=self.retry, retry_safe=safe,
                timeout=self.timeout, headers=sent, **kwargs))

    def stream(
        self,
        op: str,
        method: str,
        path: str,
        *,
        what: str | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """`request` for a body read as it arrives (Bulk 2.0 result pages, up to millions
        of rows held in flat memory): the one call that returns requests' own `Response`,
        whose `raw` and `iter_content` read the socket. Retried (when `method` is
        idempotent), refreshed and translated as `request`; the caller closes it.
        """
        method = method.upper()
        kwargs.setdefault("verify", self._sender.verify)
        return self._authorized(
            op, path, what or op, headers,
            lambda url, sent: _retrying(
                lambda: self._sender.stream(method, url, timeout=self.timeout, headers=sent,
                                            **kwargs),
                op=op, url=url, retry=self.retry, retry_safe=idempotent(method)))

    def _authorized(self, op: str, path: str, what: str, headers: Mapping[str, str] | None,
                    send: Callable[[str, dict[str, str]], _R]) -> _R:
        """`send(url, headers)` with the org's bearer token; the 2xx answer."""
        token = self.tokens.token()
        refreshed = False
        while True:
            all_headers = {"Authorization": f"Bearer {token.access_token}", **(headers or {})}
            response = send(self.url(path, token.instance_url), all_headers)
            self.usage.observe(response.headers.get("Sforce-Limit-Info"))
            if response.status_code == 401 and not refreshed:
                # Expired or revoked session: one refresh, shared by every thread that
                # saw the same stale token, then one resend.
                _release(response)
                log.info("sf_session_refresh", org=self.org, op=op)
                metrics.SF_REQUEST_RETRIES.labels(op=op).inc()
                token = self.tokens.refresh(stale=token)
                refreshed = True
                continue
            if response.status_code >= 400:
                whole = (HttpResponse.from_requests(response)
                         if isinstance(response, requests.Response) else response)
                error = error_from_response(whole, f"{what} on org {self.org}")
                _release(response)
                metrics.SF_REQUEST_FAILURES.labels(
                    op=op, reason=_reason_for(error.status, error.error_code)
                ).inc()
                log.info("sf_request_failed", org=self.org, op=op, status=error.status,
                         error_code=error.error_code)
                raise error
            return response

    def json(self, op: str, method: str, path: str, **kwargs: Any) -> Any:
        """`request` and decode the JSON body (None for 204 No Content)."""
        response = self.request(op, method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise SalesforceError(
                f"{kwargs.get('what') or op} on org {self.org}: Salesforce answered "
                f"HTTP {response.status_code} with a body that is not JSON",
                status=response.status_code,
            ) from exc
