"""The long-polling transport reads the environment once, when it is built (requests would
re-read proxies, CA bundle variables and ~/.netrc on every POST)."""

from __future__ import annotations

import pytest

from ilyd.salesforce.bayeux_transport import LongPollingTransport


def test_proxy_variables_are_honoured_once_at_construction(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    transport = LongPollingTransport("https://acme.my.salesforce.com/cometd/62.0")
    assert transport.session.proxies.get("https") == "http://proxy.internal:3128"
    assert transport.session.trust_env is False


def test_no_proxy_exempts_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    transport = LongPollingTransport("https://127.0.0.1:8443/cometd/62.0")
    assert "https" not in transport.session.proxies


def test_a_ca_bundle_variable_applies_unless_a_ca_file_is_configured(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/corp.pem")
    assert LongPollingTransport("https://x.example/cometd").session.verify == "/etc/ssl/corp.pem"
    configured = LongPollingTransport("https://x.example/cometd", ca_file="/etc/ilyd/ca.pem")
    assert configured.session.verify == "/etc/ilyd/ca.pem"
