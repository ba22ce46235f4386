"""devorg serves a login host and a My Domain (instance) host apart, and each grant is
accepted where Salesforce accepts it."""

from __future__ import annotations

import time

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from ilyd.devorg import DevOrg


def _post(url: str, **form: str) -> requests.Response:
    return requests.post(url + "/services/oauth2/token", data=form, timeout=10)


def test_client_credentials_at_the_login_host_is_refused_and_served_at_my_domain(
        dev: DevOrg) -> None:
    org = dev.orgs[0]
    form = {"grant_type": "client_credentials", "client_id": org.client_id,
            "client_secret": org.client_secret}
    refused = _post(dev.url, **form)
    assert refused.status_code == 400
    assert refused.json() == {"error": "invalid_grant",
                              "error_description": "request not supported on this domain"}
    served = _post(dev.my_domain_url, **form)
    assert served.status_code == 200, served.text


def test_token_responses_point_the_api_at_my_domain_and_the_identity_at_the_login_host(
        dev: DevOrg) -> None:
    org = dev.orgs[0]
    assert dev.my_domain_url != dev.url
    assert (org.login_url, org.instance_url) == (dev.url, dev.my_domain_url)
    for host in (dev.url, dev.my_domain_url):
        body = _post(host, grant_type="refresh_token", client_id=org.client_id,
                     client_secret=org.client_secret, refresh_token=org.refresh_token).json()
        assert body["instance_url"] == dev.my_domain_url
        assert body["id"].startswith(dev.url + "/id/")
        identity = requests.get(body["id"], timeout=10,
                                headers={"Authorization": f"Bearer {body['access_token']}"})
        assert identity.json()["urls"]["rest"].startswith(dev.my_domain_url)


def test_a_jwt_posted_to_my_domain_needs_the_login_host_as_audience(
        dev: DevOrg, signing_key: tuple[rsa.RSAPrivateKey, bytes]) -> None:
    org = dev.orgs[0]
    key, cert = signing_key
    requests.put(f"{dev.admin}/orgs/{org.name}/certificate", data=cert,
                 timeout=10).raise_for_status()

    def grant(audience: str) -> requests.Response:
        assertion = jwt.encode({"iss": org.client_id, "sub": org.username, "aud": audience,
                                "exp": int(time.time()) + 120}, key, algorithm="RS256")
        return _post(dev.my_domain_url, assertion=assertion,
                     grant_type="urn:ietf:params:oauth:grant-type:jwt-bearer")

    assert grant(dev.url).status_code == 200
    assert grant("https://login.salesforce.com").status_code == 200
    refused = grant(dev.my_domain_url)
    assert refused.status_code == 400
    assert refused.json() == {"error": "invalid_grant",
                              "error_description": "audience is invalid"}
