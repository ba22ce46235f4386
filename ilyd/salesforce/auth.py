"""OAuth 2.0 token providers: one shared access token per org, refreshed on demand.

Grants: refresh_token (the web-server flow's long-lived grant; a file-backed token is
refreshed under the file's lock and a rotated one stored before use), JWT bearer (RS256,
PyJWT), client_credentials and password (devorg and testing only). Inputs are plain
values: the config layer has already resolved secret references. Salesforce's
`invalid_grant` ends in `NeedsReauthError` carrying its own words, because no retry can
fix a revoked grant — except "token request is already being processed", which only says
another request with the same refresh token is in flight: it is retried.

One provider per org serves every part of a process that talks to the org
(`ilyd.salesforce.connect.make_org_token_provider`): one refresh at a time, the other callers
wait for its token.
"""

from __future__ import annotations

import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import jwt
import requests
import structlog

from ilyd import metrics
from ilyd.backoff import pause
from ilyd.errors import AuthError, IlydError, NeedsReauthError
from ilyd.salesforce.http import RetryPolicy, error_from_response, make_session, send_with_retry
from ilyd.salesforce.response import HttpResponse
from ilyd.salesforce.token import Token
from ilyd.salesforce.token_file import RefreshTokenFile

__all__ = [
    "ClientCredentialsProvider",
    "JwtBearerProvider",
    "PasswordProvider",
    "RefreshTokenProvider",
    "Token",
    "TokenProvider",
    "jwt_audience",
    "make_token_provider",
]

log = structlog.get_logger(__name__)

PRODUCTION_AUDIENCE = "https://login.salesforce.com"
SANDBOX_AUDIENCE = "https://test.salesforce.com"

# Salesforce rejects assertions whose exp is more than 3 minutes ahead; keep a margin
# for clock skew between us and Salesforce.
_JWT_LIFETIME_S = 150

# Since Summer '24 Salesforce refuses a token request while another one with the same
# refresh token is being processed (HTTP 400 invalid_grant with these words):
# https://help.salesforce.com/s/articleView?id=release-notes.rn_security_refresh_token_requests.htm&release=250&type=5
_BEING_PROCESSED = "token request is already being processed"


def _being_processed(response: HttpResponse) -> bool:
    if response.status_code != 400:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return (isinstance(body, dict) and body.get("error") == "invalid_grant"
            and _BEING_PROCESSED in str(body.get("error_description") or ""))


class TokenProvider(ABC):
    """Obtains access tokens with one OAuth grant and shares the current one.

    Thread-safe: `token()` returns the cached token; `refresh(stale=t)` replaces it only if
    it is still `t`, so ten threads that saw the same expired token cause one refresh.
    """

    kind: ClassVar[str]
    _reauth_hint: ClassVar[str] = "check the connected app and the integration user"

    def __init__(
        self,
        *,
        login_url: str,
        client_id: str,
        client_secret: str | None = None,
        org: str = "",
        ca_file: str | Path | None = None,
        session: requests.Session | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.login_url = login_url.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self.org = org
        self._session = session or make_session(ca_file)
        self._retry = retry or RetryPolicy()
        self._timeout = timeout
        self._lock = threading.Lock()
        self._token: Token | None = None
        self._fetches = 0  # token requests finished, answered or failed
        self._failure: IlydError | None = None  # how the last one failed, if it did

    @property
    def token_url(self) -> str:
        """The token endpoint of the login (or My Domain) host."""
        return f"{self.login_url}/services/oauth2/token"

    def token(self) -> Token:
        """The current access token, obtained first if there is none yet."""
        seen = self._fetches
        with self._lock:
            if self._token is None:
                self._token = self._fetch_once(seen)
            return self._token

    def refresh(self, stale: Token | None = None) -> Token:
        """Replace `stale` (or whatever is current, if None) with a fresh token."""
        seen = self._fetches
        with self._lock:
            if self._token is None or stale is None or self._token is stale:
                self._token = self._fetch_once(seen)
            return self._token

    def _fetch_once(self, seen: int) -> Token:
        """Fetch under the lock, unless a request that ended while this caller waited for
        the lock failed: then its error is this caller's too. Callers queued behind a
        failing request (Salesforce unreachable, the client refused) would otherwise each
        spend a full retry schedule on it in turn."""
        if self._fetches != seen and self._failure is not None:
            raise self._failure
        try:
            token = self._fetch()
        except IlydError as exc:
            self._failure = exc
            raise
        else:
            self._failure = None
            return token
        finally:
            self._fetches += 1

    def invalidate(self) -> None:
        """Forget the current token; the next `token()` obtains a new one."""
        with self._lock:
            self._token = None

    @abstractmethod
    def _grant(self) -> dict[str, str]:
        """The form fields of this grant's token request."""

    def _accept(self, body: Mapping[str, Any]) -> None:
        """Hook for a grant that must keep something from the response."""
        return

    def _fetch(self) -> Token:
        where = f"{self.kind} token request for org {self.org or self.client_id}"
        busy = 0
        while True:
            form = self._grant()
            # Token requests write nothing to the org, so retrying 5xx/connection errors is
            # safe (a rotated refresh token lost in transit ends in invalid_grant → re-auth).
            response = send_with_retry(
                self._session, "POST", self.token_url, op="token", retry=self._retry,
                retry_safe=True, timeout=self._timeout, data=form,
                headers={"Accept": "application/json"},
            )
            if not (_being_processed(response) and busy + 1 < self._retry.attempts):
                break
            # Someone else's request with the same refresh token is in flight: its
            # answer will not change ours, so wait a little and ask again.
            wait = self._retry.delay(busy)
            busy += 1
            log.info("sf_token_request_busy", org=self.org, grant=self.kind,
                     retry_in_s=round(wait, 2))
            pause(wait, "token")
        if response.status_code >= 400:
            self._raise_for_grant(response, where)
        try:
            body = response.json()
            token = Token(
                access_token=body["access_token"],
                instance_url=body["instance_url"].rstrip("/"),
                issued_at=time.time(),
                id_url=body.get("id"),
                scope=body.get("scope"),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise AuthError(f"{where}: the token response lacks access_token/instance_url",
                            status=response.status_code) from exc
        self._accept(body)
        log.info("sf_token_issued", org=self.org, grant=self.kind, instance_url=token.instance_url)
        return token

    def _raise_for_grant(self, response: HttpResponse, where: str) -> None:
        error = error_from_response(response, where)
        if response.status_code >= 500:
            raise error
        code = error.error_code or f"HTTP {response.status_code}"
        # error_from_response prefixed `where`; keep Salesforce's own words for the reader.
        words = error.message.removeprefix(f"{where}: ")
        if code == "invalid_grant" and _BEING_PROCESSED in words:
            # Not a verdict on the grant: it stays valid, the caller tries again later.
            metrics.SF_REQUEST_FAILURES.labels(op="token", reason="busy").inc()
            raise AuthError(
                f"{where}: Salesforce was still processing another request with the same "
                f"refresh token ({code}: {words}); it is tried again later",
                status=response.status_code, error_code=code,
            )
        if code == "invalid_grant":
            metrics.SF_REQUEST_FAILURES.labels(op="token", reason="reauth").inc()
            raise NeedsReauthError(
                f"{where}: Salesforce refused the grant ({code}: {words}); {self._reauth_hint}",
                status=response.status_code, error_code=code,
            )
        metrics.SF_REQUEST_FAILURES.labels(op="token", reason="client").inc()
        raise AuthError(
            f"{where}: Salesforce refused the client ({code}: {words}); "
            "check the client id and secret of the connected app",
            status=response.status_code, error_code=code,
        )

    def _client_auth(self) -> dict[str, str]:
        form = {"client_id": self.client_id}
        if self._client_secret:
            form["client_secret"] = self._client_secret
        return form


class RefreshTokenProvider(TokenProvider):
    """The refresh_token grant, on a token kept in memory or in a `RefreshTokenFile`.

    With a file, every refresh holds the file's lock, starts from the token in the file
    (another process may have rotated it) and stores a rotated token before using it, so
    no ilyd process ever presents a token rotation already replaced.
    """

    kind = "refresh_token"

    def __init__(
        self,
        *,
        refresh_token: str | None = None,
        token_file: RefreshTokenFile | str | Path | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        if isinstance(token_file, (str, Path)):
            token_file = RefreshTokenFile(token_file)
        self._file = token_file
        token = refresh_token or (token_file.read() if token_file is not None else None)
        if not token:
            raise ValueError("the refresh_token grant needs a refresh token "
                             "(run `ilyd connect` to obtain one)")
        self._refresh_token = token
        # What the file held when last read or written by us: a file that says something
        # else was changed by another process, while a file still holding this after a
        # failed write must not bring back the token rotation replaced.
        self._file_token = token

    @property
    def _reauth_hint(self) -> str:  # type: ignore[override]
        return (f"the refresh token is revoked or expired: run `ilyd connect "
                f"{self.org or '<org>'}` to authorise the integration user again")

    def _fetch(self) -> Token:
        if self._file is None:
            return super()._fetch()
        with self._file.locked():
            stored = self._file.read()
            if stored and stored != self._file_token:
                # Rotated by another process, or replaced by `ilyd connect`.
                self._refresh_token = self._file_token = stored
                log.info("sf_refresh_token_reloaded", org=self.org)
            return super()._fetch()

    def _grant(self) -> dict[str, str]:
        return {"grant_type": "refresh_token", "refresh_token": self._refresh_token,
                **self._client_auth()}

    def _accept(self, body: Mapping[str, Any]) -> None:
        rotated = body.get("refresh_token")
        if rotated and rotated != self._refresh_token:
            # The presented token is dead from now on: store the new one before use.
            self._refresh_token = str(rotated)
            if self._file is not None:
                self._file.write(self._refresh_token)
                self._file_token = self._refresh_token
            log.info("sf_refresh_token_rotated", org=self.org, stored=self._file is not None)


def jwt_audience(login_url: str) -> str:
    """The `aud` of a JWT bearer assertion for tokens requested at `login_url`.

    Salesforce wants its authorization server there, login.salesforce.com or
    test.salesforce.com (or an Experience Cloud site), even when the assertion is posted
    to a My Domain host (https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_jwt_flow.htm&type=5).
    As the Salesforce CLI does, a sandbox My Domain maps to test.salesforce.com and any
    other Salesforce host to login.salesforce.com; another host (an Experience Cloud site,
    or a stand-in such as devorg) is its own audience.
    """
    origin = login_url.rstrip("/")
    host = (urlsplit(origin).hostname or "").lower()
    if host in ("login.salesforce.com", "test.salesforce.com"):
        return f"https://{host}"
    # <name>--<sandbox>.sandbox.my.salesforce.com, and the legacy csNN sandbox instances
    if host.endswith(".sandbox.my.salesforce.com") or re.match(r"cs\d+\.", host):
        return SANDBOX_AUDIENCE
    if host.endswith(".salesforce.com"):
        return PRODUCTION_AUDIENCE
    return origin


class JwtBearerProvider(TokenProvider):
    """The JWT bearer grant: an RS256 assertion signed with the connected app's key."""

    kind = "jwt"
    _reauth_hint = ("check that the user is pre-authorised on the connected app and that "
                    "its certificate matches the private key")

    def __init__(
        self,
        *,
        username: str,
        private_key: str | bytes | None = None,
        key_file: str | Path | None = None,
        audience: str | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        if (private_key is None) == (key_file is None):
            raise ValueError("JWT bearer needs exactly one of private_key or key_file")
        self.username = username
        self._key = private_key if private_key is not None else Path(key_file).read_bytes()  # type: ignore[arg-type]
        self.audience = (audience or jwt_audience(self.login_url)).rstrip("/")

    def _grant(self) -> dict[str, str]:
        now = int(time.time())
        claims = {"iss": self.client_id, "sub": self.username, "aud": self.audience,
                  "exp": now + _JWT_LIFETIME_S}
        try:
            assertion = jwt.encode(claims, self._key, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise AuthError(f"JWT bearer for org {self.org}: cannot sign with the private "
                            f"key ({exc}); it must be an RSA key in PEM format") from exc
        return {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": assertion}


class ClientCredentialsProvider(TokenProvider):
    """The client_credentials grant (My Domain host, connected app with a Run As user)."""

    kind = "client_credentials"
    _reauth_hint = "check the connected app's client credentials flow and its Run As user"

    def _grant(self) -> dict[str, str]:
        return {"grant_type": "client_credentials", **self._client_auth()}


class PasswordProvider(TokenProvider):
    """The username-password grant: devorg and testing only (Salesforce is retiring it)."""

    kind = "password"
    _reauth_hint = "check the username, password and security token"

    def __init__(self, *, username: str, password: str, **common: Any) -> None:
        super().__init__(**common)
        self.username = username
        self._password = password
        log.warning("sf_password_grant", org=self.org,
                    hint="the username-password flow is for devorg and tests; use "
                         "refresh_token or jwt against a real org")

    def _grant(self) -> dict[str, str]:
        return {"grant_type": "password", "username": self.username,
                "password": self._password, **self._client_auth()}


_KINDS: dict[str, type[TokenProvider]] = {
    "refresh_token": RefreshTokenProvider,
    "jwt": JwtBearerProvider,
    "jwt_bearer": JwtBearerProvider,
    "client_credentials": ClientCredentialsProvider,
    "password": PasswordProvider,
}


def make_token_provider(kind: str, **params: Any) -> TokenProvider:
    """Build the provider for grant `kind` (refresh_token, jwt, client_credentials, password).

    `params` are the provider's keyword arguments: login_url, client_id, client_secret,
    org, ca_file, and per grant refresh_token/token_file, username/private_key/key_file/
    audience, or username/password.
    """
    try:
        cls = _KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown OAuth grant {kind!r}; expected one of "
                         f"{', '.join(sorted(_KINDS))}") from None
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValueError(f"{kind} grant: {exc}") from exc
