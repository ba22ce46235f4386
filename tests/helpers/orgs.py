"""A devorg fixture, ilyd configuration for its orgs, and provisioning them as the daemon
would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ilyd.actors.org import OrgSecrets
from ilyd.config import OrgConfig
from ilyd.devorg import DevOrg, OrgInfo
from ilyd.provision.service import Provisioner
from ilyd.salesforce.connect import make_org_rest_client


def devorg_fixture(scope: str = "function", **options: Any) -> Any:
    """A `dev` fixture, to assign as `dev = devorg_fixture(...)`: a devorg on a free
    loopback port, `options` passed to `DevOrg` (orgs, sandbox_orgs, ...)."""

    @pytest.fixture(scope=scope)
    def dev() -> Iterator[DevOrg]:
        with DevOrg(host="127.0.0.1", port=0, **options) as server:
            yield server

    return dev


def password_org_toml(directory: Path, dev: DevOrg, info: OrgInfo, extra: str = "") -> str:
    """One password-auth `[[org]]` table for a devorg org; its client secret and password
    go into owner-only files under `directory` (ilyd refuses readable secret files)."""
    secret, password = directory / f"{info.name}.secret", directory / f"{info.name}.pw"
    for path, value in ((secret, info.client_secret), (password, info.password)):
        path.write_text(value)
        path.chmod(0o600)
    return (f'[[org]]\nname = "{info.name}"\nenvironment = "{dev.url}"\n'
            f'auth = "password"\nclient_id = "{info.client_id}"\n'
            f'username = "{info.username}"\nclient_secret_file = "{secret}"\n'
            f'password_file = "{password}"\n' + extra)


def refresh_token_org_toml(directory: Path, dev: DevOrg, info: OrgInfo, extra: str = "") -> str:
    """One refresh_token-auth `[[org]]` table for a devorg org; its client secret and its
    refresh token (ilyd's to rotate: `{org}.refresh_token`) go into owner-only files."""
    secret = directory / f"{info.name}.secret"
    token = directory / f"{info.name}.refresh_token"
    for path, value in ((secret, info.client_secret), (token, info.refresh_token)):
        path.write_text(value + "\n")
        path.chmod(0o600)
    return (f'[[org]]\nname = "{info.name}"\nenvironment = "{dev.url}"\n'
            f'auth = "refresh_token"\nclient_id = "{info.client_id}"\n'
            f'client_secret_file = "{secret}"\nrefresh_token_file = "{token}"\n' + extra)


def provision(org: OrgConfig) -> OrgConfig:
    """Put ilyd's fields, permission set and PushTopics in the org; return `org`."""
    rest = make_org_rest_client(org, OrgSecrets.read(org))
    try:
        Provisioner(org.name, rest, objects=org.objects, api_version=org.api_version).provision()
    finally:
        rest.close()
    return org
