"""Fixtures for the provisioning tests: a fresh devorg per test, driven over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from ilyd.devorg import DevOrg, OrgInfo
from ilyd.provision.service import Provisioner
from ilyd.salesforce.auth import make_token_provider
from ilyd.salesforce.http import RetryPolicy
from ilyd.salesforce.rest import RestClient
from tests.helpers.devorg_process import start_devorg

FAST_RETRY = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05)


class Env:
    """One devorg org: its admin API, a REST client as the integration user, provisioner."""

    def __init__(self, dev: DevOrg) -> None:
        self.dev = dev
        self.org: OrgInfo = dev.orgs[0]
        self.http = requests.Session()
        self.rest = RestClient(self.org.name, make_token_provider(
            "password", login_url=self.org.login_url, client_id=self.org.client_id,
            client_secret=self.org.client_secret, username=self.org.username,
            password=self.org.password, retry=FAST_RETRY), retry=FAST_RETRY)

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call the admin API for this org."""
        response = self.http.request(method, f"{self.dev.admin}/orgs/{self.org.name}{path}",
                                     json=body, timeout=30)
        assert response.status_code < 300, response.text
        return response.json()

    def permissions(self, system: dict[str, bool] | None = None,
                    objects: dict[str, dict[str, bool]] | None = None) -> Any:
        """Change the integration user's profile permissions."""
        return self.admin("PATCH", "/permissions", {"system": system or {},
                                                    "objects": objects or {}})

    def provisioner(self, **kw: Any) -> Provisioner:
        """A Provisioner for both objects."""
        return Provisioner(self.org.name, self.rest, objects=("Account", "Lead"),
                           api_version="62.0", **kw)


@pytest.fixture
def env() -> Iterator[Env]:
    """A fresh org (full permissions, nothing installed) for each test."""
    with start_devorg() as dev:
        environment = Env(dev)
        yield environment
        environment.rest.close()
