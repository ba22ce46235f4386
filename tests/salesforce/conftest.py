"""Fixtures for the Salesforce client tests: a devorg on loopback and clients bound to it.

devorg is driven only over HTTP (its admin API under /_devorg/), never through its
Python internals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
import requests

from ilyd.salesforce.auth import TokenProvider, make_token_provider
from ilyd.salesforce.http import RetryPolicy
from ilyd.salesforce.rest import RestClient
from tests.helpers.devorg_process import devorg_fixture

if TYPE_CHECKING:
    # devorg_fixture imports devorg lazily so the pure tests (soql, limits) run without it.
    from ilyd.devorg import DevOrg, OrgInfo

# Short waits keep retry tests fast; the schedule's shape is the same as in production.
FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)


class Admin:
    """The devorg admin API (ilyd/devorg/ADMIN.md) for one org."""

    def __init__(self, base: str, org: OrgInfo) -> None:
        self.base = base.rstrip("/")
        self.org = org
        self.http = requests.Session()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(method, f"{self.base}{path}", json=body, timeout=30)
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def settings(self, **values: Any) -> Any:
        """Change org settings (api_limit, token_ttl, refresh_token_rotation, …)."""
        return self._call("PATCH", f"/orgs/{self.org.name}/settings", values)

    def fault(self, **spec: Any) -> Any:
        """Inject a fault for this org (kind=status|drop|latency, path_prefix, count…)."""
        return self._call("POST", "/faults", {"org": self.org.name, **spec})

    def clear_faults(self) -> Any:
        """Remove every injected fault."""
        return self._call("DELETE", "/faults")

    def calls(self) -> dict[str, Any]:
        """API calls counted in the window: used, limit, by_endpoint."""
        return self._call("GET", f"/orgs/{self.org.name}/calls")

    def revoke(self, token: str) -> Any:
        """Revoke a refresh token (and the access tokens issued from it)."""
        return self._call("POST", f"/orgs/{self.org.name}/tokens/revoke", {"token": token})

    def expire_tokens(self) -> Any:
        """Expire every access token of the org now (refresh tokens stay valid)."""
        return self._call("POST", f"/orgs/{self.org.name}/tokens/expire", {})

    def register_jwt_certificate(self, pem: str) -> Any:
        """Register the connected app's X.509 certificate for the JWT bearer grant."""
        response = self.http.put(f"{self.base}/orgs/{self.org.name}/certificate",
                                 data=pem.encode(), timeout=30)
        assert response.status_code < 300, response.text
        return response.json()


# One devorg (two orgs: production and sandbox) for the test module.
dev = devorg_fixture(scope="module", sandbox_orgs=1)


@pytest.fixture(scope="module")
def org(dev: DevOrg) -> OrgInfo:
    """The production org."""
    return dev.orgs[0]


@pytest.fixture
def admin(dev: DevOrg, org: OrgInfo) -> Iterator[Admin]:
    """Admin API for the production org; faults and settings are reset afterwards."""
    api = Admin(dev.admin, org)
    yield api
    api.clear_faults()
    api.settings(api_limit=15000, token_ttl=7200.0, refresh_token_rotation=False)


@pytest.fixture
def provider_for(org: OrgInfo) -> Callable[..., TokenProvider]:
    """Build a token provider for the production org with the given grant."""

    def build(kind: str = "refresh_token", **extra: Any) -> TokenProvider:
        params: dict[str, Any] = {
            "login_url": org.login_url, "client_id": org.client_id,
            "client_secret": org.client_secret, "org": org.name, "retry": FAST_RETRY,
        }
        if kind == "refresh_token":
            params["refresh_token"] = org.refresh_token
        elif kind == "password":
            params.update(username=org.username, password=org.password)
        params.update(extra)
        return make_token_provider(kind, **params)

    return build


@pytest.fixture
def rest(org: OrgInfo, provider_for: Callable[..., TokenProvider]) -> Iterator[RestClient]:
    """A RestClient for the production org on the refresh_token grant."""
    client = RestClient(org.name, provider_for("refresh_token"), retry=FAST_RETRY)
    yield client
    client.close()
