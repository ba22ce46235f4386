"""`ilyd devorg` as a process: credentials and config files, then a working server."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import requests

from tests.helpers.waiting import wait_until


def test_devorg_command_writes_credentials_and_a_config_that_logs_in(tmp_path: Path) -> None:
    creds = tmp_path / "creds.json"
    config = tmp_path / "ilyd.toml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ilyd", "devorg", "--listen", "127.0.0.1:0", "--sandboxes", "1",
         "--seed-records", "3", "--credentials-out", str(creds), "--config-out", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: (creds.exists() and config.exists()) or proc.poll() is not None,
                   timeout=30, what="devorg to write its credentials and config")
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        info = json.loads(creds.read_text())
        assert creds.stat().st_mode & 0o777 == 0o600
        assert [o["is_sandbox"] for o in info["orgs"]] == [False, True]
        parsed = tomllib.loads(config.read_text())
        org = parsed["org"][0]
        assert org["auth"] == "refresh_token"
        assert org["client_id"] == "ilyd-devorg-client"
        refresh = Path(org["refresh_token_file"]).read_text().strip()
        secret = Path(org["client_secret_file"]).read_text().strip()
        token = requests.post(org["environment"] + "/services/oauth2/token", data={
            "grant_type": "refresh_token", "client_id": org["client_id"],
            "client_secret": secret, "refresh_token": refresh})
        assert token.status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


def _serve_tls(data: Path) -> tuple[subprocess.Popen[str], dict]:
    creds = data.parent / "creds.json"
    creds.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ilyd", "devorg", "--listen", "127.0.0.1:0", "--tls",
         "--data", str(data), "--credentials-out", str(creds)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: creds.exists() or proc.poll() is not None, timeout=30,
               what="devorg to write its credentials")
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    return proc, json.loads(creds.read_text())


def test_devorg_with_tls_and_data_keeps_its_ca_so_a_client_that_trusted_it_still_connects(
        tmp_path: Path) -> None:
    data = tmp_path / "devorg.sqlite"
    proc, info = _serve_tls(data)
    try:
        trusted = tmp_path / "trusted-ca.pem"
        trusted.write_bytes(Path(info["ca_file"]).read_bytes())
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    proc, info = _serve_tls(data)
    try:
        session = requests.Session()
        session.trust_env = False
        answer = session.get(info["url"] + "/services/data", verify=str(trusted), timeout=10)
        assert answer.status_code == 200
        key = Path(info["ca_file"]).with_name("devorg-ca.key")
        assert key.stat().st_mode & 0o777 == 0o600
    finally:
        proc.terminate()
        proc.wait(timeout=10)
