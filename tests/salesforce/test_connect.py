"""Clients built from an org's config: one token provider per org in a process."""

from __future__ import annotations

import threading
from pathlib import Path

from ilyd.actors.context import OrgSecrets
from ilyd.config import OrgConfig, load_config
from ilyd.devorg import DevOrg, OrgInfo
from ilyd.salesforce.connect import make_org_rest_client
from tests.helpers.orgs import refresh_token_org_toml

from .conftest import Admin
from .test_auth import _token_requests, _whoami


def _org_config(tmp_path: Path, dev: DevOrg, info: OrgInfo) -> OrgConfig:
    config_path = tmp_path / "ilyd.toml"
    config_path.write_text(f'[daemon]\nstate_dir = "{tmp_path}/state"\n'
                           + refresh_token_org_toml(tmp_path, dev, info))
    config = load_config(config_path)
    assert not config.org_errors, config.org_errors
    return config.orgs[0]


def test_every_client_of_one_org_shares_one_token_and_refreshes_it_once(
        tmp_path: Path, dev: DevOrg, org: OrgInfo, admin: Admin) -> None:
    config = _org_config(tmp_path, dev, org)
    # As the provisioner, the pipeline and a resync each build theirs.
    clients = [make_org_rest_client(config, OrgSecrets.read(config)) for _ in range(3)]
    try:
        assert clients[0].http.tokens is clients[1].http.tokens is clients[2].http.tokens
        assert [_whoami(c) for c in clients] == [org.org_id] * 3
        admin.expire_tokens()
        before = _token_requests()
        threads = [threading.Thread(target=_whoami, args=(c,)) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert _token_requests() - before == 1
    finally:
        for client in clients:
            client.close()
