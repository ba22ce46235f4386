"""`ilyd connect` end to end: the test plays the browser on devorg's authorize page."""

from __future__ import annotations

import html.parser
import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from ilyd.cli import main
from ilyd.devorg import DevOrg

from .conftest import write_config


class _Form(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "input" and values.get("type") == "hidden" and values.get("name"):
            self.fields[str(values["name"])] = values.get("value") or ""


def _start(config: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ilyd", "connect", "acme", "--config", str(config), "--port",
         "0", "--no-browser", "--timeout", "20", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _authorize_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        if "/services/oauth2/authorize?" in line:
            return line.strip()
    stderr = process.stderr.read() if process.stderr else ""
    raise AssertionError(f"no URL printed; stderr: {stderr}")


def _play_browser(url: str, dev: DevOrg, action: str) -> str:
    """Log in on the authorize page and follow the redirect; return the page ilyd shows."""
    browser = requests.Session()
    page = browser.get(url, timeout=10)
    assert page.status_code == 200, page.text
    form = _Form()
    form.feed(page.text)
    assert form.fields["code_challenge_method"] == "S256"
    org = dev.orgs[0]
    answer = browser.post(f"{dev.url}/services/oauth2/authorize", data={
        **form.fields, "username": org.username, "password": org.password, "action": action,
    }, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    # The redirect goes to ilyd's loopback listener: follow it as a browser would.
    landing = browser.get(answer.headers["Location"], timeout=30)
    assert landing.status_code == 200
    return landing.text


def test_connect_stores_a_working_refresh_token_0600_and_says_who_is_connected(
        tmp_path: Path, dev: DevOrg) -> None:
    config = write_config(tmp_path, dev)
    process = _start(config)
    page = _play_browser(_authorize_url(process), dev, "allow")
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "ilyd is connected" in page
    org = dev.orgs[0]
    assert org.username in out
    assert org.org_id in out
    assert "(Production)" in out
    token_file = tmp_path / "state" / "tokens" / "acme.refresh_token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    refreshed = requests.post(f"{dev.url}/services/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": token_file.read_text().strip(),
        "client_id": org.client_id, "client_secret": org.client_secret}, timeout=10)
    assert refreshed.status_code == 200, refreshed.text


def test_connect_reports_access_denied_with_its_own_exit_code(
        tmp_path: Path, dev: DevOrg) -> None:
    config = write_config(tmp_path, dev)
    process = _start(config)
    _play_browser(_authorize_url(process), dev, "deny")
    _, err = process.communicate(timeout=30)
    assert process.returncode == 3
    assert "access denied" in err
    assert not (tmp_path / "state" / "tokens" / "acme.refresh_token").exists()


def test_connect_with_a_wrong_client_id_fails_at_once_with_its_own_exit_code(
        tmp_path: Path, dev: DevOrg) -> None:
    config = write_config(tmp_path, dev, client_id="3MVG9NotARealConsumerKey")
    process = _start(config)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 4
    assert "invalid_client_id" in err


def test_connect_times_out_with_its_own_exit_code(tmp_path: Path, dev: DevOrg) -> None:
    config = write_config(tmp_path, dev)
    process = _start(config, "--timeout", "0.5")
    _, err = process.communicate(timeout=30)
    assert process.returncode == 5
    assert "no answer" in err


def test_connecting_through_the_authorize_page_is_not_an_interactive_login(
        tmp_path: Path, dev: DevOrg, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, dev)
    process = _start(config)
    _play_browser(_authorize_url(process), dev, "allow")
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    org = dev.orgs[0]
    logins = requests.get(f"{dev.admin}/orgs/{org.name}/logins", timeout=10).json()
    assert {(r["LoginType"], r["Application"]) for r in logins} == {("Remote Access 2.0",
                                                                     "ilyd")}

    def user_line() -> dict[str, Any]:
        main(["check", "acme", "--config", str(config), "--json"])
        results = json.loads(capsys.readouterr().out)["results"]
        return next(r for r in results if r["step"] == "dedicated integration user")

    assert user_line()["status"] == "PASS"
    # Someone then uses the account in a browser: the same check now warns.
    requests.post(f"{dev.admin}/orgs/{org.name}/logins", json={"login_type": "Application"},
                  timeout=10).raise_for_status()
    assert user_line()["status"] == "WARN"


def _refused_code_exchange(tmp_path: Path, dev: DevOrg) -> tuple[str, str]:
    """`ilyd connect` with a wrong client secret, allowed in the browser: its stderr and
    the page the browser shows (it exits 4, Salesforce refused the client)."""
    config = write_config(tmp_path, dev)
    (tmp_path / "client_secret").write_text("not-the-secret")
    process = _start(config)
    page = _play_browser(_authorize_url(process), dev, "allow")
    _, err = process.communicate(timeout=30)
    assert process.returncode == 4, err
    return err, page


def test_the_browser_page_shows_the_failed_code_exchange_instead_of_success(
        tmp_path: Path, dev: DevOrg) -> None:
    _, page = _refused_code_exchange(tmp_path, dev)
    assert "ilyd is connected" not in page
    assert "ilyd was not connected" in page
    assert "invalid_client" in page
    assert not (tmp_path / "state" / "tokens" / "acme.refresh_token").exists()


def test_a_refused_client_secret_at_the_code_exchange_names_what_to_fix(
        tmp_path: Path, dev: DevOrg) -> None:
    err, page = _refused_code_exchange(tmp_path, dev)
    for text in (err, page):
        assert "consumer secret" in text
        assert "client_secret_file" in text
