"""Build an org's TokenProvider and RestClient from its `[[org]]` config and secrets.

The config layer resolves secret references and the org reads them when it starts
(`ilyd.actors.context.OrgSecrets`); this module only turns the values into clients, so the
daemon's children and the one-shot commands (`ilyd check`, `ilyd fields`) connect the
same way, through the org's one token provider of the process. A file-backed refresh
token is refreshed under the file's lock and a rotated one written back to it
(`ilyd.salesforce.token_file`), so processes beside each other never spend it twice.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from pathlib import Path
from typing import Protocol

from ilyd.config import OrgConfig
from ilyd.salesforce.auth import TokenProvider, make_token_provider
from ilyd.salesforce.http import RetryPolicy
from ilyd.salesforce.rest import RestClient
from ilyd.salesforce.token_file import RefreshTokenFile

__all__ = ["SecretValues", "make_org_rest_client", "make_org_token_provider"]


class SecretValues(Protocol):
    """The org's secret values (`ilyd.actors.context.OrgSecrets` satisfies it)."""

    @property
    def client_secret(self) -> str | None: ...
    @property
    def private_key(self) -> str | None: ...
    @property
    def refresh_token(self) -> str | None: ...
    @property
    def password(self) -> str | None: ...


def make_org_token_provider(config: OrgConfig, secrets: SecretValues) -> TokenProvider:
    """The org's one token provider in this process, shared by every client built for it.

    Everything that talks to the org — provisioner, pipeline, resync, subscriber, and
    the one-shot commands — then holds one access token and refreshes it one request at a
    time: Salesforce refuses a second request with a refresh token still being processed,
    and with rotation on, a second holder of the same refresh token would kill it. A
    provider lives as long as a client uses it; one built from other settings or
    secrets (a reloaded config) is a new provider.
    """
    key = _provider_key(config, secrets)
    with _providers_lock:
        provider = _providers.get(key)
        if provider is None:
            provider = _build_token_provider(config, secrets)
            _providers[key] = provider
        return provider


_providers: weakref.WeakValueDictionary[tuple[str, ...], TokenProvider] = (
    weakref.WeakValueDictionary())
_providers_lock = threading.Lock()


def _provider_key(config: OrgConfig, secrets: SecretValues) -> tuple[str, ...]:
    path = _refresh_token_path(config)
    # A file-backed refresh token changes with every rotation and is read from the file
    # at each refresh, so it is not part of what makes a provider another one.
    refresh = None if path is not None else secrets.refresh_token
    digest = hashlib.sha256(repr((secrets.client_secret, secrets.private_key,
                                  secrets.password, refresh)).encode()).hexdigest()
    return (str(config.name), config.auth, config.login_url, config.client_id or "",
            str(config.ca_file), str(path), str(config.username), digest)


def _refresh_token_path(config: OrgConfig) -> Path | None:
    if config.auth != "refresh_token" or config.refresh_token is None:
        return None
    return config.refresh_token.path()


def _build_token_provider(config: OrgConfig, secrets: SecretValues) -> TokenProvider:
    params: dict[str, object] = {
        "login_url": config.login_url, "client_id": config.client_id,
        "client_secret": secrets.client_secret, "org": config.name,
        "ca_file": config.ca_file,
    }
    if config.auth == "refresh_token":
        params["refresh_token"] = secrets.refresh_token
        path = _refresh_token_path(config)
        if path is not None:
            params["token_file"] = RefreshTokenFile(path)
    elif config.auth == "jwt":
        params.update(username=config.username, private_key=secrets.private_key)
    elif config.auth == "password":
        params.update(username=config.username, password=secrets.password)
    return make_token_provider(config.auth, **params)


def make_org_rest_client(config: OrgConfig, secrets: SecretValues, *,
                         retry: RetryPolicy | None = None,
                         export_usage: bool = True) -> RestClient:
    """A RestClient for the org (its api_version, CA file and auth method)."""
    tokens = make_org_token_provider(config, secrets)
    rest = RestClient(config.name, tokens, api_version=config.api_version,
                      ca_file=config.ca_file, retry=retry, export_usage=export_usage)
    # Every call names ilyd, so the change events of its own writes say so (changeOrigin):
    # https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_calloptions.htm
    rest.http.session.headers["Sforce-Call-Options"] = f"client={config.call_client}"
    return rest
