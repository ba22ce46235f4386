"""The one rule for what is retryable, and which requests may be sent again."""

from __future__ import annotations

import sqlite3

import pytest

from ilyd.errors import (
    AuthError,
    BayeuxError,
    ConfigError,
    NeedsReauthError,
    ProviderError,
    ProvisioningError,
    RequestLimitError,
    SalesforceError,
    SalesforceUnavailableError,
    StoreError,
    TlsError,
    idempotent,
    is_retryable,
    transient_status,
)


@pytest.mark.parametrize(("error", "retryable"), [
    (SalesforceUnavailableError("could not reach Salesforce"), True),
    (SalesforceError("server error", status=500, error_code="UNKNOWN_EXCEPTION"), True),
    (SalesforceError("unavailable", status=503), True),
    (RequestLimitError("allowance spent", status=403, error_code="REQUEST_LIMIT_EXCEEDED"),
     True),
    (SalesforceError("API off", status=403, error_code="API_DISABLED_FOR_ORG"), False),
    (SalesforceError("no access", status=400, error_code="INSUFFICIENT_ACCESS_OR_READONLY"),
     False),
    (SalesforceError("no status at all"), False),
    (AuthError("bad client", status=400, error_code="invalid_client_id"), False),
    (AuthError("session refused", status=500), False),
    (NeedsReauthError("grant revoked", status=400, error_code="invalid_grant"), False),
    (TlsError("certificate not trusted"), False),
    (ProvisioningError("plan failed"), False),
    (ConfigError("bad key"), False),
    (StoreError("disk full"), False),
    (BayeuxError("403::Handshake denied"), False),
    (ProviderError("vendor down", retryable=True, reason="server"), True),
    (ProviderError("vendor rejected the domain", retryable=False, reason="rejected"), False),
    (sqlite3.OperationalError("database is locked"), False),
    (ValueError("a bug"), False),
], ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v))
def test_only_network_5xx_limit_and_retryable_provider_failures_are_retryable(
        error: Exception, retryable: bool) -> None:
    assert is_retryable(error) is retryable


@pytest.mark.parametrize(("status", "transient"), [
    (500, True), (502, True), (503, True), (400, False), (401, False), (404, False),
    (429, False), (None, False)])
def test_only_a_5xx_answer_says_the_server_failed_for_now(status: int | None,
                                                          transient: bool) -> None:
    assert transient_status(status) is transient


@pytest.mark.parametrize("method", ["GET", "get", "HEAD", "OPTIONS", "PUT", "PATCH", "delete"])
def test_reads_and_salesforce_updates_and_deletes_may_be_sent_again(method: str) -> None:
    assert idempotent(method)


def test_a_post_is_never_sent_again() -> None:
    assert not idempotent("POST")
    assert not idempotent("post")
