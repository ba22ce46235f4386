"""The JWT bearer grant: an RS256 assertion checked against the org's registered
certificate, `aud` = its login URL (or Salesforce's login/test host), `exp` ≤ 3 minutes."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import jwt
from cryptography import x509

from ilyd.devorg.oauth_clients import OAuthError, org_for_client
from ilyd.devorg.org import OrgState

if TYPE_CHECKING:
    from ilyd.devorg.app import DevOrg

MAX_LIFETIME = 180  # seconds: Salesforce refuses assertions expiring further ahead
_LEEWAY = 5
_AUDIENCES = {False: "https://login.salesforce.com", True: "https://test.salesforce.com"}


def verify_assertion(dev: DevOrg, assertion: str | None) -> tuple[OrgState, str]:
    """(org, user id) for a valid assertion; raises OAuthError with Salesforce's words."""
    if not assertion:
        raise OAuthError("invalid_grant", "invalid assertion")
    try:
        unverified = jwt.decode(assertion, options={"verify_signature": False})
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise OAuthError("invalid_grant", "invalid assertion") from None
    org = org_for_client(dev.states.values(), str(unverified.get("iss") or ""))
    if org.jwt_certificate is None or header.get("alg") != "RS256":
        raise OAuthError("invalid_grant", "invalid assertion")
    public_key = x509.load_pem_x509_certificate(org.jwt_certificate).public_key()
    try:
        claims = jwt.decode(assertion, public_key, algorithms=["RS256"],  # type: ignore[arg-type]
                            audience=sorted(audiences(dev, org)), leeway=_LEEWAY,
                            options={"require": ["exp", "iss", "sub", "aud"]})
    except jwt.InvalidAudienceError:
        raise OAuthError("invalid_grant", "audience is invalid") from None
    except jwt.ExpiredSignatureError:
        raise OAuthError("invalid_grant", "expired authorization code") from None
    except jwt.PyJWTError:
        raise OAuthError("invalid_grant", "invalid assertion") from None
    if float(claims["exp"]) > time.time() + MAX_LIFETIME + _LEEWAY:
        raise OAuthError("invalid_grant", "invalid assertion")
    sub = str(claims["sub"]).lower()
    user = next((u for u in org.tables["User"].live.values()
                 if str(u["Username"]).lower() == sub), None)
    if user is None:
        raise OAuthError("invalid_grant", "invalid assertion")
    if user["Id"] != org.identity.user_id or not org.settings.jwt_preauthorized:
        raise OAuthError("invalid_grant", "user hasn't approved this consumer")
    return org, str(user["Id"])


def audiences(dev: DevOrg, org: OrgState) -> set[str]:
    """The JWT `aud` values an org accepts: its login URL and Salesforce's host for its kind.

    Never the My Domain URL, even for an assertion posted there: the audience is the
    authorization server, login.salesforce.com or test.salesforce.com (or an Experience
    Cloud site), https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_jwt_flow.htm&type=5
    """
    return {dev.url, _AUDIENCES[org.identity.is_sandbox]}
