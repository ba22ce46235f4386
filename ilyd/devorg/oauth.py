"""OAuth 2.0: the token endpoint (every grant ilyd uses), revoke, userinfo, identity URL.

Failures answer exactly as Salesforce does: HTTP 400 `{"error", "error_description"}`.
The authorize page lives in authorize.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import TYPE_CHECKING

from ilyd.devorg import authorize
from ilyd.devorg.jwt_grant import verify_assertion
from ilyd.devorg.logins import record_login
from ilyd.devorg.oauth_clients import OAuthError, org_for_client
from ilyd.devorg.org import OrgState
from ilyd.devorg.session import Session
from ilyd.devorg.values import format_datetime
from ilyd.devorg.web import Request, Response, Router, json_response

if TYPE_CHECKING:
    from ilyd.devorg.app import DevOrg

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def register(router: Router, dev: DevOrg) -> None:
    """Add the OAuth routes."""
    endpoint = TokenEndpoint(dev)
    router.add("POST", r"/services/oauth2/token", endpoint.handle, "oauth2.token", "public")
    router.add("POST GET", r"/services/oauth2/revoke", endpoint.revoke, "oauth2.revoke",
               "public")
    router.add("GET POST", r"/services/oauth2/userinfo", endpoint.userinfo, "oauth2.userinfo",
               "public")
    router.add("GET", r"/id/(?P<org>00D\w+)/(?P<user>005\w+)", endpoint.identity, "identity",
               "public")
    authorize.register(router, dev)


class TokenEndpoint:
    """`/services/oauth2/token` and friends for every org of a DevOrg."""

    def __init__(self, dev: DevOrg) -> None:
        self.dev = dev

    # -- helpers -------------------------------------------------------------------------
    @staticmethod
    def check_secret(org: OrgState, secret: str | None, required: bool) -> None:
        """Reject a wrong client secret (or a missing one where the grant needs it)."""
        if secret is None and not required:
            return
        if not secret or not hmac.compare_digest(org.identity.client_secret, secret):
            raise OAuthError("invalid_client", "invalid client credentials")

    def token_response(self, org: OrgState, user_id: str, client_id: str, *,
                       refresh_token: str | None = None, scope: str | None = None,
                       source_ip: str | None = None, record: bool = True,
                       family: str | None = None) -> Response:
        """A successful token response, with Salesforce's fields and signature; the login
        is recorded in LoginHistory as a connected-app (OAuth 2.0) login unless it was
        already (the authorize page records the user's login, not the code exchange).
        `family` is the refresh-token chain the access token is issued from."""
        if record:
            record_login(org, user_id, source_ip=source_ip,
                         login_url=self.dev.url.split("://", 1)[-1])
        session = self.dev.tokens.issue(org, user_id, client_id, scope or "api refresh_token",
                                        family)
        issued_at = str(int(time.time() * 1000))
        id_url = identity_url(self.dev, org, user_id)
        signature = base64.b64encode(hmac.new(
            org.identity.client_secret.encode(), (id_url + issued_at).encode(),
            hashlib.sha256).digest()).decode()
        body: dict[str, str] = {"access_token": session.token}
        if refresh_token:
            body["refresh_token"] = refresh_token
        body.update(signature=signature)
        if scope:
            body["scope"] = scope
        # The API is served at the org's My Domain; the identity URL stays on the login
        # host (https://login.salesforce.com/id/<org>/<user>).
        body.update(instance_url=self.dev.my_domain_url, id=id_url,
                    token_type="Bearer",  # noqa: S106
                    issued_at=issued_at)
        return json_response(body, headers={"Cache-Control": "no-cache,must-revalidate,"
                                            "max-age=0,no-store,private"})

    # -- the token endpoint --------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        """Dispatch on grant_type."""
        form = request.form()
        grant = form.get("grant_type")
        ip = request.client[0] if request.client else None
        try:
            if not grant:
                raise OAuthError("invalid_request", "grant type is missing")
            if grant == "password":
                return self._password(form, ip)
            if grant == "refresh_token":
                return self._refresh(form, ip)
            if grant == "authorization_code":
                return self._authorization_code(form, ip)
            if grant == "client_credentials":
                # Only the org's My Domain serves this grant; login/test.salesforce.com
                # answer this error (client credentials flow: "use your My Domain URL",
                # https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_client_credentials_flow.htm&type=5).
                if not request.on_my_domain:
                    raise OAuthError("invalid_grant", "request not supported on this domain")
                return self._client_credentials(form, ip)
            if grant == JWT_GRANT:
                org, user_id = verify_assertion(self.dev, form.get("assertion"))
                return self.token_response(org, user_id, org.identity.client_id,
                                           scope="api", source_ip=ip)
            raise OAuthError("unsupported_grant_type", "grant type not supported")
        except OAuthError as exc:
            return exc.response()

    def _password(self, form: dict[str, str], ip: str | None) -> Response:
        org = org_for_client(self.dev.states.values(), form.get("client_id"))
        self.check_secret(org, form.get("client_secret"), required=True)
        if not org.settings.password_flow_enabled:
            raise OAuthError("invalid_grant", "authentication failure")
        ident = org.identity
        if form.get("username", "").lower() != ident.username.lower():
            raise OAuthError("invalid_grant", "authentication failure")
        if not hmac.compare_digest(form.get("password", ""), ident.password):
            record_login(org, ident.user_id, status="Invalid Password", source_ip=ip)
            raise OAuthError("invalid_grant", "authentication failure")
        return self.token_response(org, ident.user_id, ident.client_id, source_ip=ip)

    def _refresh(self, form: dict[str, str], ip: str | None) -> Response:
        org = org_for_client(self.dev.states.values(), form.get("client_id"))
        self.check_secret(org, form.get("client_secret"), required=False)
        tokens = self.dev.tokens
        presented = form.get("refresh_token") or ""
        # Since Summer '24 Salesforce refuses a token request while another one with the
        # same refresh token is being processed:
        # https://help.salesforce.com/s/articleView?id=release-notes.rn_security_refresh_token_requests.htm&release=250&type=5
        if not tokens.begin_refresh(presented):
            raise OAuthError("invalid_grant", "token request is already being processed")
        try:
            return self._refresh_grant(org, presented, ip)
        finally:
            tokens.end_refresh(presented)

    def _refresh_grant(self, org: OrgState, presented: str, ip: str | None) -> Response:
        tokens = self.dev.tokens
        retired = tokens.retired.get(presented)
        if retired is not None and retired.org_name == org.identity.name:
            # Reusing a refresh token that rotation replaced revokes "the current refresh
            # token and all associated access tokens":
            # https://help.salesforce.com/s/articleView?id=005316711&type=1
            tokens.revoke_family(retired.family)
            self.dev.persist_tokens()
            raise OAuthError("invalid_grant", "expired access/refresh token")
        grant = tokens.refresh.get(presented)
        if grant is None or grant.org_name != org.identity.name:
            raise OAuthError("invalid_grant", "expired access/refresh token")
        if org.settings.token_request_seconds > 0:
            # The time Salesforce takes to process the grant: the window in which a
            # second request with the same refresh token is refused.
            time.sleep(org.settings.token_request_seconds)
        new_refresh = None
        if org.settings.refresh_token_rotation:
            new_refresh = tokens.rotate(grant).token
            self.dev.persist_tokens()
        return self.token_response(org, grant.user_id, grant.client_id,
                                   refresh_token=new_refresh, scope="api refresh_token",
                                   source_ip=ip, family=grant.family)

    def _authorization_code(self, form: dict[str, str], _ip: str | None) -> Response:
        org = org_for_client(self.dev.states.values(), form.get("client_id"))
        self.check_secret(org, form.get("client_secret"), required=False)
        code = self.dev.tokens.codes.pop(form.get("code") or "", None)
        if code is None or code.expires_at < time.time() or code.org is not org:
            raise OAuthError("invalid_grant", "expired authorization code")
        if (form.get("redirect_uri") or "") != code.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri must match configuration")
        if code.code_challenge is not None:
            verifier = form.get("code_verifier") or ""
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            if not hmac.compare_digest(digest.rstrip(b"=").decode(), code.code_challenge):
                raise OAuthError("invalid_grant", "invalid code verifier")
        elif form.get("client_secret") is None:
            raise OAuthError("invalid_client", "invalid client credentials")
        refresh = self.dev.tokens.new_refresh(org, code.user_id, code.client_id)
        self.dev.persist_tokens()
        return self.token_response(org, code.user_id, code.client_id,
                                   refresh_token=refresh.token, scope="api refresh_token id",
                                   record=False, family=refresh.family)

    def _client_credentials(self, form: dict[str, str], ip: str | None) -> Response:
        org = org_for_client(self.dev.states.values(), form.get("client_id"))
        self.check_secret(org, form.get("client_secret"), required=True)
        if not org.settings.client_credentials_enabled:
            raise OAuthError("invalid_grant", "no client credentials user enabled")
        return self.token_response(org, org.identity.user_id, org.identity.client_id,
                                   scope="api", source_ip=ip)

    # -- revoke, userinfo, identity ------------------------------------------------------
    def revoke(self, request: Request) -> Response:
        """Revoke an access or refresh token (POST form or GET ?token=)."""
        token = request.form().get("token") or ""
        if not self.dev.tokens.revoke(token):
            return OAuthError("unsupported_token_type", "this token type is not supported"
                              ).response()
        self.dev.persist_tokens()
        return Response(200, b"", content_type=None)

    def _session(self, request: Request) -> Session | None:
        session = self.dev.authenticate(request)
        if session is None:
            token = request.arg("oauth_token") or request.arg("access_token")
            session = self.dev.tokens.lookup(token) if token else None
        return session

    def userinfo(self, request: Request) -> Response:
        """OpenID Connect userinfo."""
        session = self._session(request)
        if session is None:
            return Response(403, b"Bad_OAuth_Token", content_type="text/plain")
        info = identity_document(self.dev, session.org, session.user_id)
        return json_response({
            "sub": info["id"], "user_id": info["user_id"],
            "organization_id": info["organization_id"],
            "preferred_username": info["username"], "nickname": info["nick_name"],
            "name": info["display_name"], "email": info["email"], "email_verified": True,
            "given_name": info["first_name"], "family_name": info["last_name"],
            "zoneinfo": info["timezone"], "active": True, "user_type": "STANDARD",
            "language": "en_US", "locale": "en_US", "utcOffset": -28800000,
            "updated_at": info["last_modified_date"], "is_app_installed": True,
            "urls": info["urls"],
        })

    def identity(self, request: Request) -> Response:
        """The identity URL `/id/<orgId>/<userId>`."""
        session = self._session(request)
        if session is None:
            return Response(403, b"Bad_OAuth_Token", content_type="text/plain")
        ident = session.org.identity
        if request.params["org"][:15] != ident.org_id[:15] or \
                request.params["user"][:15] != session.user_id[:15]:
            return Response(403, b"Bad_Id", content_type="text/plain")
        return json_response(identity_document(self.dev, session.org, session.user_id,
                                               request.arg("version")))


def identity_url(dev: DevOrg, org: OrgState, user_id: str) -> str:
    """`{login}/id/<orgId>/<userId>` — the `id` of every token response."""
    return f"{dev.url}/id/{org.identity.org_id}/{user_id}"


def identity_document(dev: DevOrg, org: OrgState, user_id: str,
                      version: str | None = None) -> dict[str, object]:
    """The identity service's JSON for one user."""
    user = org.get("User", user_id) or {}
    v = version if version and version != "latest" else ("62.0" if version else "{version}")
    base = dev.my_domain_url
    urls = {name: f"{base}/services/{path}".replace("{version}", v) for name, path in (
        ("enterprise", "Soap/c/{version}/" + org.identity.org_id[:15]),
        ("metadata", "Soap/m/{version}/" + org.identity.org_id[:15]),
        ("partner", "Soap/u/{version}/" + org.identity.org_id[:15]),
        ("rest", "data/v{version}/"), ("sobjects", "data/v{version}/sobjects/"),
        ("search", "data/v{version}/search/"), ("query", "data/v{version}/query/"),
        ("recent", "data/v{version}/recent/"),
        ("tooling_soap", "Soap/T/{version}/" + org.identity.org_id[:15]),
        ("tooling_rest", "data/v{version}/tooling/"),
        ("profile", "data/v{version}/sobjects/User/" + user_id),
        ("users", "data/v{version}/chatter/users"),
    )}
    urls["custom_domain"] = base
    modified = user.get("LastModifiedDate")
    return {
        "id": identity_url(dev, org, user_id), "asserted_user": True, "user_id": user_id,
        "organization_id": org.identity.org_id, "username": user.get("Username"),
        "nick_name": str(user.get("Alias") or ""), "display_name": user.get("Name"),
        "email": user.get("Email"), "email_verified": True,
        "first_name": user.get("FirstName"), "last_name": user.get("LastName"),
        "timezone": user.get("TimeZoneSidKey"), "photos": {}, "addr_street": None,
        "addr_city": None, "addr_state": None, "addr_country": None, "addr_zip": None,
        "mobile_phone": None, "mobile_phone_verified": False, "is_lightning_login_user": False,
        "status": {"created_date": None, "body": None}, "urls": urls, "active": True,
        "user_type": "STANDARD", "language": "en_US", "locale": "en_US", "utcOffset": -28800000,
        "last_modified_date": format_datetime(modified) if modified else None,  # type: ignore[arg-type]
        "is_app_installed": True,
    }
