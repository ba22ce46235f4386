"""simple-salesforce, unchanged, logged in to a TLS devorg org: the third-party client the
Metadata API tests read layouts back with."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from simple_salesforce import Salesforce

from ilyd.devorg import DevOrg
from tests.helpers.orgs import password_org_toml


def simple_salesforce(dev: DevOrg, monkeypatch: pytest.MonkeyPatch) -> Salesforce:
    """A Salesforce client for dev's first org (refresh-token grant), trusting dev's CA."""
    # zeep (simple-salesforce's mdapi) opens its own requests session, which trusts what
    # REQUESTS_CA_BUNDLE names.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(dev.ca_file))
    info = dev.orgs[0]
    session = requests.Session()
    session.trust_env = False
    session.verify = str(dev.ca_file)
    token = session.post(dev.url + "/services/oauth2/token", data={
        "grant_type": "refresh_token", "client_id": info.client_id,
        "client_secret": info.client_secret, "refresh_token": info.refresh_token},
        timeout=30).json()
    return Salesforce(session_id=token["access_token"], instance_url=token["instance_url"],
                      session=session, version="59.0")


def tls_org_config(dev: DevOrg, directory: Path) -> Path:
    """An ilyd config for dev's first org (password auth, dev's CA as ca_file)."""
    path = directory / "ilyd.toml"
    path.write_text(f'[daemon]\nstate_dir = "{directory}/state"\n'
                    f'control_socket = "{directory}/control.sock"\n[metrics]\nlisten = ""\n'
                    + password_org_toml(directory, dev, dev.orgs[0],
                                        f'ca_file = "{dev.ca_file}"\n'))
    return path
