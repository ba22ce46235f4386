"""ilyd configuration for a devorg's orgs, and provisioning them as the daemon would
(the devorg itself: tests.helpers.devorg_process)."""

from __future__ import annotations

from pathlib import Path

from ilyd.actors.context import OrgSecrets
from ilyd.config import OrgConfig
from ilyd.devorg import DevOrg, OrgInfo
from ilyd.provision.service import Provisioner
from ilyd.salesforce.connect import make_org_rest_client


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
