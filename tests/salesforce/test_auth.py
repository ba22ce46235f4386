"""OAuth grants against devorg: every grant, expiry mid-run, revocation, rotation."""

from __future__ import annotations

import datetime as dt
import os
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ilyd.devorg import DevOrg, OrgInfo
from ilyd.errors import AuthError, NeedsReauthError
from ilyd.metrics import REGISTRY
from ilyd.salesforce.auth import (
    JwtBearerProvider,
    TokenProvider,
    make_token_provider,
)
from ilyd.salesforce.http import RetryPolicy
from ilyd.salesforce.rest import RestClient
from tests.helpers.devorg_process import start_devorg
from tests.helpers.waiting import wait_until

from .conftest import FAST_RETRY, Admin


def _token_requests() -> float:
    return REGISTRY.get_sample_value("ilyd_sf_requests_total", {"op": "token"}) or 0.0


def _key_and_certificate() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ilyd test connected app")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return pem_key, cert.public_bytes(serialization.Encoding.PEM).decode()


def _whoami(client: RestClient) -> str:
    rows = list(client.query("SELECT Id FROM Organization"))
    return rows[0]["Id"]


@pytest.fixture
def fresh() -> Iterator[tuple[DevOrg, OrgInfo, Admin]]:
    """A devorg of its own, for tests that revoke or rotate the org's grants."""
    with start_devorg() as server:
        yield server, server.orgs[0], Admin(server.admin, server.orgs[0])


def test_refresh_token_grant_reaches_the_org_named_in_the_identity_url(
    org: OrgInfo, provider_for: Callable[..., TokenProvider]
) -> None:
    provider = provider_for("refresh_token")
    token = provider.token()
    assert token.org_id == org.org_id
    assert token.user_id == org.user_id
    assert token.instance_url == org.instance_url
    assert token.access_token not in repr(token)
    client = RestClient(org.name, provider, retry=FAST_RETRY)
    assert _whoami(client) == org.org_id


def test_password_grant_works_and_warns_that_it_is_for_testing(
    org: OrgInfo, provider_for: Callable[..., TokenProvider]
) -> None:
    with structlog.testing.capture_logs() as logs:
        provider = provider_for("password")
    assert any(e["event"] == "sf_password_grant" and e["log_level"] == "warning" for e in logs)
    assert _whoami(RestClient(org.name, provider, retry=FAST_RETRY)) == org.org_id


def test_client_credentials_grant_runs_as_the_integration_user(
    org: OrgInfo, provider_for: Callable[..., TokenProvider]
) -> None:
    # Salesforce serves this grant only at the org's My Domain (its instance URL).
    token = provider_for("client_credentials", login_url=org.instance_url).token()
    assert token.user_id == org.user_id


def test_jwt_bearer_grant_signs_an_assertion_the_org_verifies(
    org: OrgInfo, admin: Admin
) -> None:
    key, cert = _key_and_certificate()
    admin.register_jwt_certificate(cert)
    provider = make_token_provider(
        "jwt", login_url=org.login_url, client_id=org.client_id, username=org.username,
        private_key=key, org=org.name, retry=FAST_RETRY,
    )
    assert isinstance(provider, JwtBearerProvider)
    assert _whoami(RestClient(org.name, provider, retry=FAST_RETRY)) == org.org_id


def test_jwt_bearer_reads_the_key_from_a_file(
    org: OrgInfo, admin: Admin, tmp_path: Path
) -> None:
    key, cert = _key_and_certificate()
    admin.register_jwt_certificate(cert)
    key_file = tmp_path / "server.key"
    key_file.write_bytes(key)
    provider = make_token_provider(
        "jwt", login_url=org.login_url, client_id=org.client_id, username=org.username,
        key_file=key_file, org=org.name, retry=FAST_RETRY,
    )
    assert provider.token().user_id == org.user_id


def test_jwt_signed_with_an_unregistered_key_needs_reauth(org: OrgInfo, admin: Admin) -> None:
    _, cert = _key_and_certificate()
    admin.register_jwt_certificate(cert)
    other_key, _ = _key_and_certificate()
    provider = make_token_provider(
        "jwt", login_url=org.login_url, client_id=org.client_id, username=org.username,
        private_key=other_key, org=org.name, retry=FAST_RETRY,
    )
    with pytest.raises(NeedsReauthError) as caught:
        provider.token()
    assert caught.value.error_code == "invalid_grant"


def test_wrong_client_secret_is_an_auth_error_not_a_reauth(
    provider_for: Callable[..., TokenProvider]
) -> None:
    provider = provider_for("password", client_secret="not-the-secret")
    with pytest.raises(AuthError) as caught:
        provider.token()
    assert not isinstance(caught.value, NeedsReauthError)
    assert str(caught.value.error_code).startswith("invalid_client")


def test_unknown_grant_kind_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="client_credentials"):
        make_token_provider("saml", login_url="http://127.0.0.1:1", client_id="x")


def _wait_until_expired(token_value: str, instance_url: str) -> None:
    """Wait until devorg answers 401 to the old token."""

    def refused() -> list[dict[str, str]] | None:
        answer = requests.get(f"{instance_url}/services/data/v62.0/limits/",
                              headers={"Authorization": f"Bearer {token_value}"}, timeout=5)
        return list(answer.json()) if answer.status_code == 401 else None

    errors = wait_until(refused, timeout=10, what="the access token to expire")
    assert errors[0]["errorCode"] == "INVALID_SESSION_ID"


def test_expired_token_is_refreshed_once_and_the_call_retried(
    org: OrgInfo, admin: Admin, rest: RestClient
) -> None:
    admin.settings(token_ttl=0.5)
    old = rest.token
    admin.settings(token_ttl=7200.0)
    _wait_until_expired(old.access_token, old.instance_url)
    before = _token_requests()
    assert _whoami(rest) == org.org_id
    assert _token_requests() - before == 1
    assert rest.token is not old


def test_threads_that_see_the_same_expired_token_refresh_it_once(
    org: OrgInfo, admin: Admin, rest: RestClient
) -> None:
    admin.settings(token_ttl=0.5)
    old = rest.token
    admin.settings(token_ttl=7200.0)
    _wait_until_expired(old.access_token, old.instance_url)
    before = _token_requests()
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(_whoami(rest))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [org.org_id] * 8
    assert _token_requests() - before == 1


def test_revoked_refresh_token_raises_needs_reauth_with_salesforces_words(
    fresh: tuple[DevOrg, OrgInfo, Admin]
) -> None:
    _, info, admin = fresh
    provider = make_token_provider(
        "refresh_token", login_url=info.login_url, client_id=info.client_id,
        client_secret=info.client_secret, refresh_token=info.refresh_token, org=info.name,
        retry=FAST_RETRY,
    )
    client = RestClient(info.name, provider, retry=FAST_RETRY)
    assert _whoami(client) == info.org_id
    admin.revoke(info.refresh_token)
    with pytest.raises(NeedsReauthError) as caught:
        _whoami(client)
    error = caught.value
    assert error.error_code == "invalid_grant"
    assert "expired access/refresh token" in str(error)
    assert f"ilyd connect {info.name}" in str(error)


def test_rotated_refresh_token_is_persisted_owner_only_and_used_next(
    fresh: tuple[DevOrg, OrgInfo, Admin], tmp_path: Path
) -> None:
    _, info, admin = fresh
    admin.settings(refresh_token_rotation=True)
    store = tmp_path / "refresh_token"
    store.write_text(info.refresh_token + "\n")
    common = {"login_url": info.login_url, "client_id": info.client_id,
              "client_secret": info.client_secret, "org": info.name, "retry": FAST_RETRY}
    make_token_provider("refresh_token", token_file=store, **common).token()
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600
    rotated = store.read_text().strip()
    assert rotated not in ("", info.refresh_token)
    again = make_token_provider("refresh_token", token_file=store, **common)
    assert again.token().org_id == info.org_id
    assert store.read_text().strip() not in (rotated, info.refresh_token)


def test_holders_of_one_token_file_never_present_a_token_rotation_replaced(
    fresh: tuple[DevOrg, OrgInfo, Admin], tmp_path: Path
) -> None:
    # Two holders of the same file, as the daemon and `ilyd check` beside it are: each
    # starts from the token it read, and the other rotates it underneath.
    _, info, admin = fresh
    admin.settings(refresh_token_rotation=True, token_request_seconds=0.2)
    store = tmp_path / "refresh_token"
    store.write_text(info.refresh_token + "\n")
    common = {"login_url": info.login_url, "client_id": info.client_id,
              "client_secret": info.client_secret, "org": info.name, "retry": FAST_RETRY,
              "refresh_token": info.refresh_token, "token_file": store}
    daemon = make_token_provider("refresh_token", **common)
    check = make_token_provider("refresh_token", **common)
    failures: list[BaseException] = []

    def refresh(provider: TokenProvider) -> None:
        try:
            provider.refresh()
        except AuthError as exc:
            failures.append(exc)

    for _ in range(3):
        threads = [threading.Thread(target=refresh, args=(p,)) for p in (daemon, check)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert failures == []
    # The chain is alive: the stored token is the current one.
    assert make_token_provider("refresh_token", **{**common, "refresh_token": None}
                               ).token().org_id == info.org_id


def test_a_refresh_refused_as_already_being_processed_is_retried_and_never_means_reauth(
    fresh: tuple[DevOrg, OrgInfo, Admin]
) -> None:
    # Two holders that cannot share a lock (another host, say) refresh at once.
    _, info, admin = fresh
    admin.settings(token_request_seconds=1.0)
    patient = RetryPolicy(attempts=6, base_delay=0.2, max_delay=1.0)
    providers = [make_token_provider(
        "refresh_token", login_url=info.login_url, client_id=info.client_id,
        client_secret=info.client_secret, refresh_token=info.refresh_token, org=info.name,
        retry=patient) for _ in range(2)]
    outcomes: list[object] = []

    def fetch(provider: TokenProvider) -> None:
        try:
            outcomes.append(provider.token().org_id)
        except AuthError as exc:
            outcomes.append(exc)

    with structlog.testing.capture_logs() as logs:
        threads = [threading.Thread(target=fetch, args=(p,)) for p in providers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert outcomes == [info.org_id, info.org_id]
    assert any(e["event"] == "sf_token_request_busy" for e in logs)


def test_a_refresh_still_refused_as_being_processed_is_an_auth_error_not_reauth(
    fresh: tuple[DevOrg, OrgInfo, Admin]
) -> None:
    _, info, admin = fresh
    # Token requests carry no session, so the fault is for every org of this devorg.
    admin._call("POST", "/faults", {"kind": "status", "path_prefix": "/services/oauth2/token",
                                    "status": 400, "error_code": "oauth:invalid_grant",
                                    "message": "token request is already being processed"})
    provider = make_token_provider(
        "refresh_token", login_url=info.login_url, client_id=info.client_id,
        client_secret=info.client_secret, refresh_token=info.refresh_token, org=info.name,
        retry=FAST_RETRY)
    with pytest.raises(AuthError) as caught:
        provider.token()
    assert not isinstance(caught.value, NeedsReauthError)
    assert "tried again later" in str(caught.value)
    admin.clear_faults()
    assert provider.token().org_id == info.org_id


def test_callers_waiting_while_a_token_request_fails_get_its_error_without_asking_again(
    fresh: tuple[DevOrg, OrgInfo, Admin]
) -> None:
    _, info, admin = fresh
    # Every token request takes two seconds, so the callers started together all wait
    # for the first one's answer even on a loaded machine.
    admin._call("POST", "/faults", {"kind": "latency", "delay": 2.0,
                                    "path_prefix": "/services/oauth2/token"})
    provider = make_token_provider(
        "client_credentials", login_url=info.instance_url, client_id=info.client_id,
        client_secret="not-the-secret", org=info.name, retry=FAST_RETRY)
    before = _token_requests()
    outcomes: list[object] = []

    def fetch() -> None:
        try:
            outcomes.append(provider.token())
        except AuthError as exc:
            outcomes.append(exc.error_code)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert outcomes == ["invalid_client"] * 4
    assert _token_requests() - before == 1


def test_sandbox_jwt_uses_the_test_host_as_audience(dev: DevOrg) -> None:
    sandbox = next(o for o in dev.orgs if o.is_sandbox)
    key, cert = _key_and_certificate()
    Admin(dev.admin, sandbox).register_jwt_certificate(cert)
    common = {"login_url": sandbox.login_url, "client_id": sandbox.client_id,
              "username": sandbox.username, "private_key": key, "org": sandbox.name,
              "retry": FAST_RETRY}
    token = make_token_provider("jwt", audience="https://test.salesforce.com", **common).token()
    assert token.org_id == sandbox.org_id
    wrong = make_token_provider("jwt", audience="https://login.salesforce.com", **common)
    with pytest.raises(NeedsReauthError, match="audience is invalid"):
        wrong.token()
