"""The OAuth 2.0 web-server flow with PKCE (S256) on a loopback redirect listener.

`WebServerFlow` builds the authorization URL, waits for the browser to come back to
`http://127.0.0.1:PORT/OauthRedirect`, checks `state`, and exchanges the code (with the
PKCE verifier) for tokens. Errors are distinct exceptions so `ilyd connect` can map each
to its own exit code: access denied, client refused, timeout.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from ilyd.errors import AuthError, IlydError, TlsError
from ilyd.salesforce.http import make_session

CALLBACK_PATH = "/OauthRedirect"
SCOPES = "api refresh_token"
_PAGE = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>ilyd</title></head><body>"
         "<h1>{title}</h1><p>{text}</p></body></html>")


class AccessDeniedError(AuthError):
    """The user (or Salesforce) refused the authorization."""


class ClientRejectedError(AuthError):
    """Salesforce does not know the client id, or refused the client secret."""


class FlowTimeoutError(IlydError):
    """Nobody came back to the redirect URI in time."""


@dataclass(frozen=True)
class TokenGrant:
    """What the token endpoint returned for the code (the tokens never appear in repr)."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    instance_url: str = ""
    id_url: str = ""

    @property
    def org_id(self) -> str:
        """18-char org id from the identity URL."""
        return self.id_url.rstrip("/").split("/")[-2]

    @property
    def user_id(self) -> str:
        """18-char user id from the identity URL."""
        return self.id_url.rstrip("/").split("/")[-1]


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge) per RFC 7636."""
    verifier = secrets.token_urlsafe(64)  # 86 chars from the unreserved set
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# How long the browser's redirect waits for the code exchange before the page says to
# look at the terminal (the exchange itself gives up after 60 s).
_OUTCOME_WAIT_S = 90.0
# How long closing waits for a browser's page to be written out.
_ANSWER_WAIT_S = 5.0


class _Callback(http.server.BaseHTTPRequestHandler):
    server: _CallbackServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != CALLBACK_PATH:
            self.send_error(404)
            return
        with self.server.answering():
            self.server.deliver({k: v[0] for k, v in parse_qs(parts.query).items()})
            # The page tells the outcome of the whole login, so it is written only once the
            # code exchange has succeeded or failed, never on the redirect's arrival alone.
            title, text = self.server.outcome(_OUTCOME_WAIT_S)
            body = _PAGE.format(title=_escape(title), text=_escape(text)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence: the query string carries the authorization code."""


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _CallbackServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Callback)
        self.result: dict[str, str] | None = None
        self.arrived = threading.Event()
        self._page: tuple[str, str] | None = None
        self._decided = threading.Event()
        self._answers = 0  # browsers being answered now
        self._answered = threading.Condition()

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Count a browser being answered, so `close` can let its page out first."""
        with self._answered:
            self._answers += 1
        try:
            yield
        finally:
            with self._answered:
                self._answers -= 1
                self._answered.notify_all()

    def wait_answered(self, timeout: float) -> None:
        """Wait (at most `timeout`) until no browser is being answered: the handler
        threads are daemon threads, and a process that exits mid-page cuts it short."""
        with self._answered:
            self._answered.wait_for(lambda: self._answers == 0, timeout)

    def deliver(self, params: dict[str, str]) -> None:
        if not self.arrived.is_set():
            self.result = params
            self.arrived.set()

    def decide(self, title: str, text: str) -> None:
        """Set what the browser is shown (the first decision stands)."""
        if not self._decided.is_set():
            self._page = (title, text)
            self._decided.set()

    def outcome(self, timeout: float) -> tuple[str, str]:
        """The page to show, once decided (or a pointer to the terminal after `timeout`)."""
        if self._decided.wait(timeout) and self._page is not None:
            return self._page
        return ("ilyd is still connecting", "See the terminal where ilyd connect runs.")


class WebServerFlow:
    """One authorization: listen, build the URL, wait, exchange."""

    def __init__(self, login_url: str, client_id: str, client_secret: str | None = None, *,
                 port: int = 1717, ca_file: str | Path | None = None) -> None:
        self.login_url = login_url.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self._session = make_session(ca_file)
        self._verifier, self._challenge = pkce_pair()
        self.state = secrets.token_urlsafe(24)
        try:
            self._server = _CallbackServer(port)
        except OSError as exc:
            raise IlydError(f"cannot listen on 127.0.0.1:{port} for the OAuth redirect:"
                            f" {exc.strerror}; pick another port with --port") from exc
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True,
                                        name="oauth-callback")
        self._thread.start()

    @property
    def redirect_uri(self) -> str:
        """The callback URL (register it on the connected app)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}{CALLBACK_PATH}"

    @property
    def authorize_url(self) -> str:
        """Where the user logs in and allows access."""
        query = urlencode({
            "response_type": "code", "client_id": self.client_id,
            "redirect_uri": self.redirect_uri, "scope": SCOPES, "state": self.state,
            "code_challenge": self._challenge, "code_challenge_method": "S256",
            "prompt": "login consent",
        })
        return f"{self.login_url}/services/oauth2/authorize?{query}"

    def probe_client(self) -> None:
        """Fail fast on an unknown client id: Salesforce's authorize page says so at once
        (the browser would show the error and never come back)."""
        try:
            response = self._session.get(self.authorize_url, allow_redirects=False, timeout=30,
                                         verify=self._session.verify)
        except requests.exceptions.SSLError as exc:
            raise self._tls_error(exc) from exc
        except requests.RequestException:
            return  # the browser may still reach it (proxy); the wait will tell
        where = response.headers.get("Location", "") + response.text[:2000]
        if "invalid_client_id" in where:
            raise ClientRejectedError(
                f"Salesforce does not know client id {self.client_id[:12]}… at"
                f" {self.login_url} (invalid_client_id); check client_id in the config"
                " against the connected app's Consumer Key, and the login host"
                " (production vs --sandbox)", error_code="invalid_client_id")

    def wait(self, timeout: float) -> str:
        """Wait for the redirect; return the authorization code."""
        if not self._server.arrived.wait(timeout):
            raise FlowTimeoutError(
                f"no answer on {self.redirect_uri} within {timeout:g} s; open the URL in"
                " a browser on this machine (or forward the port) and log in as the"
                " integration user")
        params = self._server.result or {}
        if params.get("state") != self.state:
            raise AuthError("the OAuth redirect carried the wrong state; start again")
        error = params.get("error")
        if error == "access_denied":
            raise AccessDeniedError(
                "access denied: the authorization was refused"
                f" ({params.get('error_description') or error}); log in as the integration"
                " user and click Allow", error_code=error)
        if error:
            raise AuthError(f"Salesforce refused the authorization ({error}:"
                            f" {params.get('error_description', '')})", error_code=error)
        return params["code"]

    def exchange(self, code: str) -> TokenGrant:
        """Trade the code (and the PKCE verifier) for an access and a refresh token."""
        form = {"grant_type": "authorization_code", "code": code, "client_id": self.client_id,
                "redirect_uri": self.redirect_uri, "code_verifier": self._verifier}
        if self._client_secret:
            form["client_secret"] = self._client_secret
        try:
            response = self._session.post(f"{self.login_url}/services/oauth2/token", data=form,
                                          headers={"Accept": "application/json"}, timeout=60,
                                          verify=self._session.verify)
        except requests.exceptions.SSLError as exc:
            raise self._tls_error(exc) from exc
        except requests.RequestException as exc:
            raise AuthError(f"cannot reach {self.login_url}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 400 or "access_token" not in body:
            code_name = str(body.get("error") or f"HTTP {response.status_code}")
            words = body.get("error_description") or response.text[:200]
            rejected = code_name in ("invalid_client_id", "invalid_client")
            cls = ClientRejectedError if rejected else AuthError
            fix = ("; Salesforce refused the connected app's consumer key or consumer secret:"
                   " check client_id and what client_secret_file (or _credential / _env)"
                   " holds" if rejected else "")
            raise cls(f"the token exchange failed ({code_name}: {words}){fix}",
                      status=response.status_code, error_code=code_name)
        if not body.get("refresh_token"):
            raise AuthError("Salesforce issued no refresh token: add the 'refresh_token,"
                            " offline_access' scope to the connected app")
        return TokenGrant(body["access_token"], body["refresh_token"],
                          str(body.get("instance_url") or "").rstrip("/"), str(body.get("id")))

    def _tls_error(self, exc: requests.exceptions.SSLError) -> TlsError:
        return TlsError(f"TLS verification of {self.login_url} failed ({exc}); if it uses a"
                        " private CA, set ca_file in the org's config to that CA's certificate")

    def whoami(self, grant: TokenGrant, api_version: str) -> dict[str, Any]:
        """Username, display name, org name and whether it is a sandbox."""
        headers = {"Authorization": f"Bearer {grant.access_token}"}
        out: dict[str, Any] = {"user_id": grant.user_id, "org_id": grant.org_id}
        try:
            ident = self._session.get(grant.id_url, headers=headers, timeout=30,
                                      verify=self._session.verify).json()
            out.update(username=ident.get("username"), display_name=ident.get("display_name"))
            query = self._session.get(
                f"{grant.instance_url}/services/data/v{api_version}/query/",
                params={"q": "SELECT Name, IsSandbox FROM Organization"}, headers=headers,
                timeout=30, verify=self._session.verify).json()
            org = (query.get("records") or [{}])[0]
            out.update(org_name=org.get("Name"), is_sandbox=org.get("IsSandbox"))
        except (requests.RequestException, ValueError, AttributeError):
            pass  # who is connected is a courtesy; the token is what matters
        return out

    def succeeded(self, text: str) -> None:
        """Show the browser that the connection is made (after the token is stored)."""
        self._server.decide("ilyd is connected",
                            f"{text} You can close this window and return to the terminal.")

    def failed(self, error: Exception | str) -> None:
        """Show the browser why the connection was not made."""
        self._server.decide("ilyd was not connected",
                            f"{error}. See the terminal where ilyd connect runs.")

    def close(self) -> None:
        """Stop listening (a browser still waiting is told to look at the terminal)."""
        self._server.decide("ilyd was not connected", "See the terminal where ilyd connect"
                            " runs.")
        self._server.wait_answered(_ANSWER_WAIT_S)
        self._server.shutdown()
        self._server.server_close()
