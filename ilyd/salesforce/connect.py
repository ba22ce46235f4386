"""Build an org's TokenProvider and RestClient from its `[[org]]` config and secrets.

The config layer resolves secret references and the org reads them when it starts
(`ilyd.actors.org.OrgSecrets`); this module only turns the values into clients, so the
daemon's children and the one-shot commands (`ilyd check`, `ilyd fields`) connect the
same way. A rotated refresh token is written back to the file the config points at.
"""

from __future__ import annotations

from typing import Protocol

from ilyd.config import OrgConfig
from ilyd.salesforce.auth import TokenProvider, make_token_provider, refresh_token_file_writer
from ilyd.salesforce.http import RetryPolicy
from ilyd.salesforce.rest import RestClient

__all__ = ["SecretValues", "make_org_rest_client", "make_org_token_provider"]


class SecretValues(Protocol):
    """The org's secret values (`ilyd.actors.org.OrgSecrets` satisfies it)."""

    @property
    def client_secret(self) -> str | None: ...
    @property
    def private_key(self) -> str | None: ...
    @property
    def refresh_token(self) -> str | None: ...
    @property
    def password(self) -> str | None: ...


def make_org_token_provider(config: OrgConfig, secrets: SecretValues, *,
                            retry: RetryPolicy | None = None) -> TokenProvider:
    """The token provider for the org's configured auth method."""
    params: dict[str, object] = {
        "login_url": config.login_url, "client_id": config.client_id,
        "client_secret": secrets.client_secret, "org": config.name,
        "ca_file": config.ca_file, "retry": retry,
    }
    if config.auth == "refresh_token":
        params["refresh_token"] = secrets.refresh_token
        path = config.refresh_token.path() if config.refresh_token is not None else None
        if path is not None:
            params["on_rotate"] = refresh_token_file_writer(path)
    elif config.auth == "jwt":
        params.update(username=config.username, private_key=secrets.private_key)
    elif config.auth == "password":
        params.update(username=config.username, password=secrets.password)
    return make_token_provider(config.auth, **params)


def make_org_rest_client(config: OrgConfig, secrets: SecretValues, *,
                         retry: RetryPolicy | None = None,
                         export_usage: bool = True) -> RestClient:
    """A RestClient for the org (its api_version, CA file and auth method)."""
    tokens = make_org_token_provider(config, secrets, retry=retry)
    return RestClient(config.name, tokens, api_version=config.api_version,
                      ca_file=config.ca_file, retry=retry, export_usage=export_usage)
