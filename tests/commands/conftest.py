"""Fixtures for the command tests: a devorg and a config file pointing at it."""

from __future__ import annotations

from pathlib import Path

from ilyd.devorg import DevOrg
from tests.helpers.devorg_process import devorg_fixture

# A fresh devorg with one production org.
dev = devorg_fixture()


def write_config(tmp_path: Path, dev: DevOrg, *, auth: str = "refresh_token",
                 client_id: str | None = None) -> Path:
    """A config with one org `acme` on devorg; secrets in 0600 files."""
    org = dev.orgs[0]
    secret = tmp_path / "client_secret"
    secret.write_text(org.client_secret)
    secret.chmod(0o600)
    text = (f'[daemon]\nstate_dir = "{tmp_path}/state"\n'
            f'control_socket = "{tmp_path}/control.sock"\n[metrics]\nlisten = ""\n'
            f'[[org]]\nname = "acme"\nenvironment = "{dev.url}"\nauth = "{auth}"\n'
            f'client_id = "{client_id or org.client_id}"\nclient_secret_file = "{secret}"\n')
    if auth == "password":
        password = tmp_path / "password"
        password.write_text(org.password)
        password.chmod(0o600)
        text += f'username = "{org.username}"\npassword_file = "{password}"\n'
    path = tmp_path / "ilyd.toml"
    path.write_text(text)
    return path
