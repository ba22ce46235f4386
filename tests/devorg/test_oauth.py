"""OAuth: every grant, token expiry, revoke, rotation, authorize page, JWT bearer."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from urllib.parse import parse_qs, urlsplit

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from ilyd.devorg import DevOrg
from tests.helpers.waiting import wait_until

from .conftest import API, Client


def _token(dev: DevOrg, **form: str) -> requests.Response:
    return requests.post(dev.url + "/services/oauth2/token", data=form)


def test_refresh_token_grant_returns_salesforce_token_response(dev: DevOrg) -> None:
    org = dev.orgs[0]
    body = _token(dev, grant_type="refresh_token", refresh_token=org.refresh_token,
                  client_id=org.client_id, client_secret=org.client_secret).json()
    assert body["access_token"].startswith(org.org_id[:15] + "!")
    assert body["instance_url"] == org.instance_url
    assert body["token_type"] == "Bearer"
    assert body["id"] == f"{dev.url}/id/{org.org_id}/{org.user_id}"
    assert body["issued_at"].isdigit()
    assert "signature" in body
    assert "refresh_token" not in body


def test_token_errors_use_error_and_description(dev: DevOrg) -> None:
    org = dev.orgs[0]
    cases = [
        ({"grant_type": "refresh_token", "refresh_token": "nope", "client_id": org.client_id},
         "invalid_grant", "expired access/refresh token"),
        ({"grant_type": "password", "client_id": "unknown", "client_secret": "x"},
         "invalid_client_id", "client identifier invalid"),
        ({"grant_type": "password", "client_id": org.client_id, "client_secret": "bad"},
         "invalid_client", "invalid client credentials"),
        ({"grant_type": "password", "client_id": org.client_id,
          "client_secret": org.client_secret, "username": org.username, "password": "bad"},
         "invalid_grant", "authentication failure"),
        ({"grant_type": "magic"}, "unsupported_grant_type", "grant type not supported"),
    ]
    for form, error, description in cases:
        response = _token(dev, **form)
        assert response.status_code == 400
        assert response.json() == {"error": error, "error_description": description}


def test_access_token_expires_after_the_configured_lifetime(client: Client) -> None:
    client.admin("PATCH", "/orgs/org0/settings", json={"token_ttl": 0.3})
    fresh = _token(client.dev, grant_type="refresh_token", client_id=client.org.client_id,
                   refresh_token=client.org.refresh_token).json()["access_token"]
    headers = {"Authorization": f"Bearer {fresh}"}
    assert requests.get(client.base + "/sobjects", headers=headers).status_code == 200

    def refused() -> list[dict[str, str]] | None:
        response = requests.get(client.base + "/sobjects", headers=headers)
        return list(response.json()) if response.status_code == 401 else None

    errors = wait_until(refused, timeout=10, what="the access token to expire")
    assert errors[0]["errorCode"] == "INVALID_SESSION_ID"


def test_admin_expiry_and_revoke_end_sessions(client: Client) -> None:
    assert client.admin("POST", "/orgs/org0/tokens/expire", json={}).json()[
        "expired_access_tokens"] >= 1
    assert client.get("/sobjects").status_code == 401
    revoke = requests.post(client.dev.url + "/services/oauth2/revoke",
                           data={"token": client.org.refresh_token})
    assert revoke.status_code == 200
    refused = _token(client.dev, grant_type="refresh_token", client_id=client.org.client_id,
                     refresh_token=client.org.refresh_token)
    assert refused.json()["error_description"] == "expired access/refresh token"


def test_refresh_token_rotation_hands_out_a_new_token_that_works_next(client: Client) -> None:
    client.admin("PATCH", "/orgs/org0/settings", json={"refresh_token_rotation": True})
    first = _token(client.dev, grant_type="refresh_token", client_id=client.org.client_id,
                   refresh_token=client.org.refresh_token).json()
    assert first["refresh_token"] != client.org.refresh_token
    second = _token(client.dev, grant_type="refresh_token", client_id=client.org.client_id,
                    refresh_token=first["refresh_token"]).json()
    assert second["refresh_token"] not in (first["refresh_token"], client.org.refresh_token)


def test_reusing_a_rotated_out_refresh_token_revokes_the_current_one_and_its_sessions(
        client: Client) -> None:
    client.admin("PATCH", "/orgs/org0/settings", json={"refresh_token_rotation": True})
    first = _token(client.dev, grant_type="refresh_token", client_id=client.org.client_id,
                   refresh_token=client.org.refresh_token).json()
    api = f"{client.dev.url}{API}/limits/"
    bearer = {"Authorization": f"Bearer {first['access_token']}"}
    assert requests.get(api, headers=bearer).status_code == 200
    reused = _token(client.dev, grant_type="refresh_token", client_id=client.org.client_id,
                    refresh_token=client.org.refresh_token)
    assert reused.status_code == 400
    assert reused.json() == {"error": "invalid_grant",
                             "error_description": "expired access/refresh token"}
    current = _token(client.dev, grant_type="refresh_token", client_id=client.org.client_id,
                     refresh_token=first["refresh_token"])
    assert current.json()["error"] == "invalid_grant"
    assert requests.get(api, headers=bearer).status_code == 401
    # Sessions of other grants (the test client's password login) are not touched.
    assert client.get("/limits/").status_code == 200


def test_a_second_request_with_a_refresh_token_being_processed_is_refused(
        client: Client) -> None:
    client.admin("PATCH", "/orgs/org0/settings", json={"token_request_seconds": 2.0})
    form = {"grant_type": "refresh_token", "client_id": client.org.client_id,
            "refresh_token": client.org.refresh_token}
    # Four requests at once: the first to arrive is processed for two seconds, the others
    # come while it is in flight.
    answers: list[requests.Response] = []
    threads = [threading.Thread(target=lambda: answers.append(_token(client.dev, **form)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(a.status_code for a in answers) == [200, 400, 400, 400]
    busy = {"error": "invalid_grant",
            "error_description": "token request is already being processed"}
    assert [a.json() for a in answers if a.status_code == 400] == [busy] * 3
    assert _token(client.dev, **form).status_code == 200


def test_client_credentials_needs_a_run_as_user(client: Client) -> None:
    org = client.org
    my_domain = client.dev.my_domain_url + "/services/oauth2/token"
    ok = requests.post(my_domain, data={"grant_type": "client_credentials",
                                        "client_id": org.client_id,
                                        "client_secret": org.client_secret})
    assert ok.status_code == 200
    assert "refresh_token" not in ok.json()
    client.admin("PATCH", "/orgs/org0/settings", json={"client_credentials_enabled": False})
    refused = requests.post(my_domain, data={"grant_type": "client_credentials",
                                             "client_id": org.client_id,
                                             "client_secret": org.client_secret})
    assert refused.json() == {"error": "invalid_grant",
                              "error_description": "no client credentials user enabled"}


def _authorize(dev: DevOrg, **params: str) -> requests.Response:
    return requests.post(dev.url + "/services/oauth2/authorize", data=params,
                         allow_redirects=False)


def test_authorize_page_redirects_with_code_and_pkce_is_checked(dev: DevOrg) -> None:
    org = dev.orgs[0]
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()
                                         ).rstrip(b"=").decode()
    page = requests.get(dev.url + "/services/oauth2/authorize", params={
        "response_type": "code", "client_id": org.client_id,
        "redirect_uri": "http://127.0.0.1:1/cb", "state": "s1"})
    assert page.status_code == 200
    assert "<form" in page.text
    common = {"response_type": "code", "client_id": org.client_id,
              "redirect_uri": "http://127.0.0.1:1/cb", "state": "s1",
              "code_challenge": challenge, "code_challenge_method": "S256",
              "username": org.username, "password": org.password}
    allowed = _authorize(dev, **common, action="allow")
    assert allowed.status_code == 302
    query = parse_qs(urlsplit(allowed.headers["Location"]).query)
    assert query["state"] == ["s1"]
    code = query["code"][0]
    bad = _token(dev, grant_type="authorization_code", code=code, client_id=org.client_id,
                 redirect_uri="http://127.0.0.1:1/cb", code_verifier="wrong")
    assert bad.json()["error"] == "invalid_grant"
    code = parse_qs(urlsplit(_authorize(dev, **common, action="allow").headers["Location"]
                             ).query)["code"][0]
    good = _token(dev, grant_type="authorization_code", code=code, client_id=org.client_id,
                  redirect_uri="http://127.0.0.1:1/cb", code_verifier=verifier)
    assert good.status_code == 200
    assert good.json()["refresh_token"]
    reused = _token(dev, grant_type="authorization_code", code=code, client_id=org.client_id,
                    redirect_uri="http://127.0.0.1:1/cb", code_verifier=verifier)
    assert reused.json() == {"error": "invalid_grant",
                             "error_description": "expired authorization code"}
    denied = _authorize(dev, **common, action="deny")
    assert parse_qs(urlsplit(denied.headers["Location"]).query)["error"] == ["access_denied"]


def test_userinfo_and_identity_url_describe_the_user(client: Client) -> None:
    info = client.http.get(client.dev.url + "/services/oauth2/userinfo").json()
    assert info["user_id"] == client.org.user_id
    assert info["preferred_username"] == client.org.username
    identity = client.http.get(f"{client.dev.url}/id/{client.org.org_id}/{client.org.user_id}")
    assert identity.json()["organization_id"] == client.org.org_id
    assert identity.json()["urls"]["rest"].endswith("/services/data/v{version}/")
    assert requests.get(client.dev.url + "/services/oauth2/userinfo").status_code == 403


def test_jwt_bearer_checks_signature_audience_and_expiry(
        client: Client, signing_key: tuple[rsa.RSAPrivateKey, bytes]) -> None:
    key, cert = signing_key
    assert client.admin("PUT", "/orgs/org0/certificate", data=cert).status_code == 200
    org = client.org

    def assertion(aud: str = "https://login.salesforce.com", exp: float = 120,
                  signer: object = key) -> str:
        claims = {"iss": org.client_id, "sub": org.username, "aud": aud,
                  "exp": int(time.time() + exp)}
        return jwt.encode(claims, signer, algorithm="RS256")  # type: ignore[arg-type]

    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    ok = _token(client.dev, grant_type=grant, assertion=assertion())
    assert ok.status_code == 200
    assert "refresh_token" not in ok.json()
    assert _token(client.dev, grant_type=grant, assertion=assertion(aud=client.dev.url)
                  ).status_code == 200
    sandbox_aud = _token(client.dev, grant_type=grant,
                         assertion=assertion(aud="https://test.salesforce.com"))
    assert sandbox_aud.json()["error_description"] == "audience is invalid"
    too_long = _token(client.dev, grant_type=grant, assertion=assertion(exp=600))
    assert too_long.json()["error"] == "invalid_grant"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = _token(client.dev, grant_type=grant, assertion=assertion(signer=other))
    assert forged.json() == {"error": "invalid_grant", "error_description": "invalid assertion"}
    client.admin("PATCH", "/orgs/org0/settings", json={"jwt_preauthorized": False})
    unapproved = _token(client.dev, grant_type=grant, assertion=assertion())
    assert unapproved.json()["error_description"] == "user hasn't approved this consumer"


def test_sandbox_orgs_are_told_apart_by_their_tokens(dev: DevOrg) -> None:
    prod, sandbox = dev.orgs
    assert sandbox.is_sandbox
    assert not prod.is_sandbox
    token = _token(dev, grant_type="refresh_token", client_id=sandbox.client_id,
                   refresh_token=sandbox.refresh_token).json()["access_token"]
    org = requests.get(dev.url + API + "/query", params={
        "q": "SELECT Id, IsSandbox FROM Organization"},
        headers={"Authorization": f"Bearer {token}"}).json()["records"][0]
    assert org["Id"] == sandbox.org_id
    assert org["IsSandbox"] is True
