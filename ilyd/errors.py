"""The one exception tree of ilyd, and the one rule for what is retryable.

Library exceptions (requests, sqlite3, tomli, websocket) are translated into these
where they enter our code (`raise ... from exc`). Every message says what happened,
to what, and what to do about it.

Each error says whether trying the same thing again later may succeed without anyone
acting (`retryable`, asked through `is_retryable`); `transient_status` says it of an
HTTP answer, and `idempotent` says which requests may be sent again at all.
"""

from __future__ import annotations

# Requests whose repetition leaves the server in the same state, so one that may have
# reached it can be sent again: reads, and Salesforce's PUT/PATCH/DELETE, which set a
# record to the given values or remove it. A plain POST (a create, a Bulk job) could act
# twice, so it is never sent again once it may have reached the server.
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})


def idempotent(method: str) -> bool:
    """Whether an HTTP request with `method` may be sent again after a failure."""
    return method.upper() in _IDEMPOTENT_METHODS


def transient_status(status: int | None) -> bool:
    """Whether an HTTP answer says the server failed for now (5xx): any other answer is
    about the request, and says the same when it is sent again."""
    return status is not None and status >= 500


def is_retryable(error: BaseException) -> bool:
    """Whether trying the same thing again later may succeed without anyone acting.

    Only ilyd's own errors say so (`retryable`); anything else is a bug or unknown."""
    return isinstance(error, IlydError) and error.retryable


class IlydError(Exception):
    """Base of every error ilyd raises on purpose. `retryable` is False unless the class
    (or, for a provider, the instance) says otherwise."""

    retryable: bool = False


class ConfigError(IlydError):
    """The configuration is invalid. `problems` lists every problem with its key path."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class ScopeRefusedError(ConfigError):
    """Salesforce refused an `[org.scope]` condition: the org's config is wrong."""


class StoreError(IlydError):
    """The durable state store could not be opened or written."""


class SalesforceError(IlydError):
    """Salesforce answered with an error.

    Carries the HTTP status, Salesforce's `errorCode`, its message and the fields it named.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        fields: tuple[str, ...] = (),
    ) -> None:
        self.status = status
        self.error_code = error_code
        self.fields = fields
        self.message = message
        super().__init__(f"{error_code or status}: {message}" if error_code or status else message)

    @property
    def retryable(self) -> bool:
        """Salesforce failing for now (5xx); its other answers are about our request."""
        return transient_status(self.status)


class AuthError(SalesforceError):
    """Authentication failed (bad credentials, revoked or expired refresh token)."""

    retryable = False  # refused credentials or grant: a person must act


class NeedsReauthError(AuthError):
    """The stored grant no longer works; an admin must run `ilyd connect` again."""


class TlsError(SalesforceError):
    """Salesforce's certificate could not be verified: retrying cannot help; the CA that
    signed it must be trusted (the org's `ca_file`)."""

    retryable = False


class RequestLimitError(SalesforceError):
    """The org's API allowance is spent (REQUEST_LIMIT_EXCEEDED) or our budget is reached.

    Retryable: the rolling 24-hour window frees calls again."""

    retryable = True


class SalesforceUnavailableError(SalesforceError):
    """Salesforce could not be reached, or kept answering 5xx, after the allowed retries.

    Transient by nature: the caller should back off and try again later.
    """

    retryable = True


class StoppingError(SalesforceUnavailableError):
    """A wait before a retry was cut short because the thread's org or the daemon is
    stopping (`ilyd.backoff.pause`). Nothing more was sent; treated as Salesforce being
    unavailable, so what was being done stays where a later start finds it again."""


class BayeuxError(IlydError):
    """A Bayeux/CometD exchange failed (handshake denied, unknown client, bad reply)."""


class ProvisioningError(IlydError):
    """Setting up fields, permission sets or PushTopics in an org failed."""


class ProviderError(IlydError):
    """An enrichment provider failed. `retryable` says whether trying later may succeed.

    `reason` is a short stable word for metrics and status ("timeout", "rate_limited",
    "queued", "auth", …). `retry_after` is the number of seconds the source asked us to
    wait (HTTP Retry-After), when it said so.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        reason: str = "error",
        retry_after: float | None = None,
    ) -> None:
        self.retryable = retryable
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(message)


class ControlError(IlydError):
    """A control-socket request failed; `code` is one of the stable protocol codes."""

    def __init__(self, code: str, message: str, hint: str | None = None) -> None:
        self.code = code
        self.message = message
        self.hint = hint
        super().__init__(message)
