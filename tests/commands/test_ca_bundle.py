"""Every command that reaches Salesforce trusts the org's `ca_file` first, even when
REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE (which requests lets override a session's own
verification) name a bundle without devorg's CA; a certificate nobody trusts exits 6."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import certifi
import pytest
import requests

from ilyd.devorg import DevOrg
from ilyd.salesforce.auth import make_token_provider
from ilyd.salesforce.rest import RestClient
from tests.helpers.devorg_process import devorg_fixture
from tests.helpers.orgs import password_org_toml
from tests.helpers.waiting import wait_until

from .test_connect import _authorize_url, _Form

ILYD = (sys.executable, "-m", "ilyd")
# A real CA bundle that does not hold devorg's CA, as on a host with a corporate bundle.
FOREIGN_ENV = {**os.environ, "REQUESTS_CA_BUNDLE": certifi.where(),
               "CURL_CA_BUNDLE": certifi.where(), "PYTHONUNBUFFERED": "1"}
EXIT_TLS = 6


# devorg serving HTTPS with its own CA.
dev = devorg_fixture(tls=True)


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A short directory: the control socket's path must fit 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="ca", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _trusting(dev: DevOrg) -> requests.Session:
    """The test's own client: it trusts devorg's CA whatever the environment says."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(dev.ca_file)
    return session


def _config(workdir: Path, dev: DevOrg, *, ca_file: bool = True, auth: str = "password"
            ) -> Path:
    org = dev.orgs[0]
    extra = f'ca_file = "{dev.ca_file}"\npoll_interval = 5\n' if ca_file else ""
    text = (f'[daemon]\nstate_dir = "{workdir}/state"\ncontrol_socket = "{workdir}/c.sock"\n'
            f'log_format = "json"\n[metrics]\nlisten = ""\n')
    if auth == "password":
        text += password_org_toml(workdir, dev, org, extra)
    else:
        secret = workdir / "client_secret"
        secret.write_text(org.client_secret)
        secret.chmod(0o600)
        text += (f'[[org]]\nname = "{org.name}"\nenvironment = "{dev.url}"\n'
                 f'auth = "refresh_token"\nclient_id = "{org.client_id}"\n'
                 f'client_secret_file = "{secret}"\n' + extra)
    path = workdir / "ilyd.toml"
    path.write_text(text)
    return path


def _ilyd(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ILYD, *args], capture_output=True, text=True, timeout=timeout,
                          env=FOREIGN_ENV, check=False)


def _rest(dev: DevOrg) -> RestClient:
    org = dev.orgs[0]
    tokens = make_token_provider("password", login_url=org.login_url, client_id=org.client_id,
                                 client_secret=org.client_secret, username=org.username,
                                 password=org.password, org=org.name, ca_file=dev.ca_file)
    return RestClient(org.name, tokens, ca_file=dev.ca_file)


def test_connect_trusts_the_configured_ca_file_over_the_ca_bundle_variables(
        workdir: Path, dev: DevOrg) -> None:
    config = _config(workdir, dev, auth="refresh_token")
    process = subprocess.Popen(
        [*ILYD, "connect", dev.orgs[0].name, "--config", str(config), "--port", "0",
         "--no-browser", "--timeout", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=FOREIGN_ENV)
    browser = _trusting(dev)
    page = browser.get(_authorize_url(process), timeout=10)
    form = _Form()
    form.feed(page.text)
    org = dev.orgs[0]
    answer = browser.post(f"{dev.url}/services/oauth2/authorize", data={
        **form.fields, "username": org.username, "password": org.password, "action": "allow",
    }, allow_redirects=False, timeout=10)
    landing = requests.get(answer.headers["Location"], timeout=30)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "ilyd is connected" in landing.text
    assert org.username in out


def test_check_and_tail_trust_the_configured_ca_file_over_the_ca_bundle_variables(
        workdir: Path, dev: DevOrg) -> None:
    rest = _rest(dev)
    rest.create("PushTopic", {"Name": "IlyLeadChanges", "ApiVersion": 62.0,
                              "Query": "SELECT Id, Email, Company FROM Lead"})
    lead = rest.create("Lead", {"LastName": "T", "Company": "Tail"})
    rest.close()
    config = _config(workdir, dev)
    name = dev.orgs[0].name

    check = _ilyd("check", name, "--config", str(config), "--json")
    assert check.returncode in (0, 1), check.stderr
    results = json.loads(check.stdout)["results"]
    assert results[0]["status"] == "PASS", results[0]
    assert "TLS" not in check.stdout + check.stderr

    tail = _ilyd("tail", name, "--config", str(config), "--channel", "/topic/IlyLeadChanges",
                 "--replay", "-2", "--count", "1")
    assert tail.returncode == 0, tail.stderr
    assert json.loads(tail.stdout.splitlines()[0])["data"]["sobject"]["Id"] == lead


def test_check_tail_and_connect_exit_6_naming_ca_file_when_the_certificate_is_not_trusted(
        workdir: Path, dev: DevOrg) -> None:
    config = _config(workdir, dev, ca_file=False)
    name = dev.orgs[0].name
    for args in (("check", name), ("tail", name, "--count", "1")):
        done = _ilyd(*args, "--config", str(config))
        assert done.returncode == EXIT_TLS, (args, done.stderr)
        assert "ca_file" in done.stderr
    config = _config(workdir, dev, ca_file=False, auth="refresh_token")
    done = _ilyd("connect", name, "--config", str(config), "--port", "0", "--no-browser",
                 "--timeout", "5")
    assert done.returncode == EXIT_TLS, done.stderr
    assert "ca_file" in done.stderr


class _Daemon:
    def __init__(self, config: Path) -> None:
        self.config = config
        self.log = (config.parent / "daemon.log").open("ab")
        self.process = subprocess.Popen([*ILYD, "run", "--config", str(config)],
                                        stdout=self.log, stderr=subprocess.STDOUT,
                                        env=FOREIGN_ENV, start_new_session=True)

    def ctl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return _ilyd("ctl", "--config", str(self.config), *args, timeout=timeout)

    def org(self) -> dict[str, Any]:
        done = self.ctl("--json", "orgs")
        if done.returncode != 0:
            return {}
        body = json.loads(done.stdout)
        orgs = body.get("orgs", body) if isinstance(body, dict) else body
        return dict(orgs[0]) if orgs else {}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


def test_run_ctl_and_resync_trust_the_configured_ca_file_over_the_ca_bundle_variables(
        workdir: Path, dev: DevOrg) -> None:
    admin = _trusting(dev)
    base = f"{dev.admin}/orgs/{dev.orgs[0].name}"
    daemon = _Daemon(_config(workdir, dev))
    try:
        wait_until(lambda: daemon.process.poll() is not None
                   or daemon.org().get("state") == "running",
                   timeout=60, what="the org running in the daemon")
        assert daemon.process.poll() is None, (workdir / "daemon.log").read_text()
        provision = daemon.ctl("provision", dev.orgs[0].name)
        assert provision.returncode == 0, provision.stdout + provision.stderr
        check = daemon.ctl("--json", "check", dev.orgs[0].name)
        assert check.returncode in (0, 1), check.stderr
        assert "TLS" not in check.stdout

        created = admin.post(f"{base}/records/Account",
                             json={"Name": "A", "Website": "https://acme.example"}, timeout=10)
        account = created.json()["id"]

        def enriched() -> bool:
            record = admin.get(f"{base}/records/{account}", timeout=10).json()["record"]
            return bool(record.get("Ily_Match_Status__c"))

        wait_until(enriched, timeout=60, what="the account enriched in real time")
        resync = daemon.ctl("--json", "resync", dev.orgs[0].name, "--object", "Account",
                            "--wait")
        assert resync.returncode == 0, resync.stdout + resync.stderr
        final = json.loads("\n".join(line for line in resync.stdout.splitlines()
                                     if not line.startswith('{"progress"')))
        assert final["phase"] == "done", final
        assert final["failed"] == 0
        assert "TLS" not in (workdir / "daemon.log").read_text()
    finally:
        daemon.stop()
