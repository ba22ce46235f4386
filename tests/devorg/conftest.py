"""Fixtures: a running devorg and an authenticated requests session against it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ilyd.devorg import DevOrg, OrgInfo
from tests.helpers.devorg_process import devorg_fixture
from tests.helpers.waiting import wait_until

API = "/services/data/v59.0"


@dataclass
class Client:
    """A requests session logged in to one org of a devorg."""

    dev: DevOrg
    org: OrgInfo
    http: requests.Session
    token: str

    @property
    def base(self) -> str:
        return self.dev.url + API

    def get(self, path: str, **kw: object) -> requests.Response:
        return self.http.get(self.base + path, **kw)  # type: ignore[arg-type]

    def post(self, path: str, **kw: object) -> requests.Response:
        return self.http.post(self.base + path, **kw)  # type: ignore[arg-type]

    def patch(self, path: str, **kw: object) -> requests.Response:
        return self.http.patch(self.base + path, **kw)  # type: ignore[arg-type]

    def delete(self, path: str, **kw: object) -> requests.Response:
        return self.http.delete(self.base + path, **kw)  # type: ignore[arg-type]

    def admin(self, method: str, path: str, **kw: object) -> requests.Response:
        return self.http.request(method, f"{self.dev.admin}{path}", **kw)  # type: ignore[arg-type]

    def query(self, soql: str) -> dict:
        response = self.get("/query", params={"q": soql})
        assert response.status_code == 200, response.text
        return response.json()


def job_in_state(client: Client, path: str, states: set[str]) -> dict:
    """The Bulk API job at `path` once it is in one of `states` (polled with a deadline)."""

    def reached() -> dict | None:
        info = client.get(path).json()
        return info if info["state"] in states else None

    return dict(wait_until(reached, timeout=30, what=f"the job at {path} to reach {states}"))


def login(dev: DevOrg, org: OrgInfo, http: requests.Session | None = None) -> Client:
    """Password-grant login (a test convenience devorg supports)."""
    http = http or requests.Session()
    http.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override verify=
    response = http.post(dev.url + "/services/oauth2/token", data={
        "grant_type": "password", "client_id": org.client_id,
        "client_secret": org.client_secret, "username": org.username,
        "password": org.password})
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    http.headers["Authorization"] = f"Bearer {token}"
    return Client(dev, org, http, token)


dev = devorg_fixture(sandbox_orgs=1, seed_records=30)


@pytest.fixture
def client(dev: DevOrg) -> Client:
    return login(dev, dev.orgs[0])


@pytest.fixture(scope="module")
def signing_key() -> tuple[rsa.RSAPrivateKey, bytes]:
    """An RSA key and a self-signed certificate for it, as a connected app's JWT pair."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ilyd test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM)
