"""The JWT bearer assertion's audience is Salesforce's login host, even when the token
request goes to a My Domain host."""

from __future__ import annotations

import pytest

from ilyd.salesforce.auth import jwt_audience, make_token_provider


@pytest.mark.parametrize(("login_url", "audience"), [
    ("https://login.salesforce.com", "https://login.salesforce.com"),
    ("https://test.salesforce.com/", "https://test.salesforce.com"),
    ("https://acme.my.salesforce.com", "https://login.salesforce.com"),
    ("https://acme--uat.sandbox.my.salesforce.com", "https://test.salesforce.com"),
    ("https://cs42.salesforce.com", "https://test.salesforce.com"),
    ("https://acme.my.site.com", "https://acme.my.site.com"),
])
def test_the_audience_is_the_login_host_for_my_domain_urls(login_url: str,
                                                           audience: str) -> None:
    assert jwt_audience(login_url) == audience


def test_a_jwt_provider_on_a_my_domain_url_signs_for_the_login_host() -> None:
    provider = make_token_provider("jwt", login_url="https://acme.my.salesforce.com",
                                   client_id="3MVG9", username="i@acme.example",
                                   private_key="unused")
    assert provider.token_url == "https://acme.my.salesforce.com/services/oauth2/token"
    assert provider.audience == "https://login.salesforce.com"
