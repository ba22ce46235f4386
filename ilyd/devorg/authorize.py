"""`/services/oauth2/authorize`: a small login + allow page for the web-server flow.

GET renders the page; POST (the form) checks the credentials and redirects to
`redirect_uri` with `code` and `state`, or with `error=access_denied` when refused.
PKCE (S256) is honoured, and required when the org's `pkce_required` setting is on.
"""

from __future__ import annotations

import hmac
import html
import secrets
import time
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from ilyd.devorg.logins import record_login
from ilyd.devorg.oauth_clients import OAuthError, org_for_client
from ilyd.devorg.session import AuthCode
from ilyd.devorg.web import Request, Response, Router

if TYPE_CHECKING:
    from ilyd.devorg.app import DevOrg

CODE_TTL = 15 * 60
_PARAMS = ("response_type", "client_id", "redirect_uri", "state", "scope", "code_challenge",
           "code_challenge_method", "prompt")
_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Login | Salesforce (devorg)</title></head>
<body><main style="max-width:26rem;margin:3rem auto;font-family:sans-serif">
<h1>devorg</h1><p>{org}: allow <b>ilyd</b> to access your data?</p>{error}
<form method="post" action="/services/oauth2/authorize">{hidden}
<p><label>Username <input name="username" value="{username}" autocomplete="username"></label></p>
<p><label>Password <input name="password" type="password" autocomplete="current-password">
</label></p>
<p><button name="action" value="allow">Allow</button>
<button name="action" value="deny">Deny</button></p></form></main></body></html>
"""


def register(router: Router, dev: DevOrg) -> None:
    """Add the authorize page."""
    page = AuthorizePage(dev)
    router.add("GET POST", r"/services/oauth2/authorize", page.handle, "oauth2.authorize",
               "public")


def _redirect(uri: str, params: dict[str, str]) -> Response:
    sep = "&" if "?" in uri else "?"
    return Response(302, b"", {"Location": uri + sep + urlencode(params)}, content_type=None)


class AuthorizePage:
    """The login + allow form and its redirect."""

    def __init__(self, dev: DevOrg) -> None:
        self.dev = dev

    def handle(self, request: Request) -> Response:
        """Render (GET) or submit (POST) the page."""
        form = request.form()
        try:
            org = org_for_client(self.dev.states.values(), form.get("client_id"))
        except OAuthError as exc:
            body = f"<h1>error={exc.error}</h1><p>{html.escape(exc.description)}</p>"
            return Response(400, body.encode(), content_type="text/html;charset=UTF-8")
        redirect_uri = form.get("redirect_uri") or ""
        if not redirect_uri:
            body = b"<h1>error=redirect_uri_mismatch</h1><p>redirect_uri must match configuration"
            return Response(400, body, content_type="text/html;charset=UTF-8")
        state = {"state": form["state"]} if form.get("state") else {}
        if form.get("response_type") != "code":
            return _redirect(redirect_uri, {"error": "unsupported_response_type",
                                            "error_description": "response type not supported",
                                            **state})
        challenge = form.get("code_challenge") or None
        if challenge is None and org.settings.pkce_required:
            return _redirect(redirect_uri, {"error": "invalid_request",
                                            "error_description": "missing required code "
                                            "challenge", **state})
        if challenge and form.get("code_challenge_method", "S256") != "S256":
            return _redirect(redirect_uri, {"error": "invalid_request",
                                            "error_description": "invalid code challenge method",
                                            **state})
        if request.method == "GET" or "action" not in form:
            return self._page(org.identity.name, form, "")
        if form["action"] != "allow":
            return _redirect(redirect_uri, {"error": "access_denied",
                                            "error_description": "end-user denied authorization",
                                            **state})
        ident = org.identity
        ip = request.client[0] if request.client else None
        known = form.get("username", "").lower() == ident.username.lower()
        if not known or not hmac.compare_digest(form.get("password", ""), ident.password):
            if known:
                record_login(org, ident.user_id, status="Invalid Password", source_ip=ip)
            return self._page(ident.name, form, "Please check your username and password. If "
                              "you still can't log in, contact your Salesforce administrator.")
        code = AuthCode("aPrx" + secrets.token_urlsafe(48), org, ident.user_id, ident.client_id,
                        redirect_uri, challenge, time.time() + CODE_TTL)
        self.dev.tokens.codes[code.code] = code
        # Logging in on the connected app's authorize page is an OAuth 2.0 login ("Remote
        # Access 2.0", the app's name as Application), not a UI login ("Application"):
        # connecting ilyd as the integration user must not look like everyday use.
        record_login(org, ident.user_id, source_ip=ip,
                     login_url=self.dev.url.split("://", 1)[-1])
        return _redirect(redirect_uri, {"code": code.code, **state})

    @staticmethod
    def _page(org_name: str, form: dict[str, str], error: str) -> Response:
        hidden = "".join(
            f'<input type="hidden" name="{k}" value="{html.escape(form[k], quote=True)}">'
            for k in _PARAMS if form.get(k))
        body = _PAGE.format(org=html.escape(org_name), hidden=hidden,
                            username=html.escape(form.get("username", ""), quote=True),
                            error=f'<p role="alert">{html.escape(error)}</p>' if error else "")
        return Response(200, body.encode(), content_type="text/html;charset=UTF-8")
