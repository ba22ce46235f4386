"""Fixtures for pipeline tests: a devorg with ilyd provisioned, an org config pointing
at it, a state database, and helpers that act as a Salesforce user through the admin
API (so records are created and edited by someone other than ilyd)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from ilyd.actors.context import OrgSecrets
from ilyd.config import OrgConfig, load_config
from ilyd.control.client import ControlClient
from ilyd.devorg import DevOrg, OrgInfo
from ilyd.pipeline.runtime import OrgPipeline
from ilyd.store import Database
from tests.helpers.actors import stop_every_actor
from tests.helpers.devorg_process import devorg_fixture
from tests.helpers.orgs import password_org_toml, provision
from tests.helpers.store import database_fixture
from tests.helpers.waiting import wait_until  # noqa: F401 - the pipeline tests import it here


def write_config(tmp_path: Path, dev: DevOrg, infos: list[OrgInfo], extra: str = "",
                 org_extra: str = "", daemon: str = "") -> Path:
    """An ilyd config with one password-auth [[org]] per devorg org (secrets in files);
    `daemon` lines go into [daemon], `extra` after [metrics], `org_extra` into each org."""
    # degraded_after = 0: an org that cannot work shows degraded at once, not after 30 s.
    text = (f'[daemon]\nstate_dir = "{tmp_path}/state"\n'
            f'control_socket = "{tmp_path}/control.sock"\nlog_format = "json"\n'
            'degraded_after = 0\n' + daemon
            + '[metrics]\nlisten = "127.0.0.1:0"\n' + extra)
    for info in infos:
        text += password_org_toml(tmp_path, dev, info, "poll_interval = 5\n" + org_extra)
    path = tmp_path / "ilyd.toml"
    path.write_text(text)
    return path


class Daemon:
    """`ilyd run` on a config, in a session of its own: a test can kill the front alone
    (`kill`) or with its worker processes (`kill_all`)."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.socket = config.parent / "control.sock"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.config.parent / "daemon.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ilyd", "run", "--config", str(self.config)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def ctl(self, *args: str) -> str:
        """`ilyd ctl ARGS…` against this daemon; its stdout (the call must succeed)."""
        done = subprocess.run([sys.executable, "-m", "ilyd", "ctl", "--socket",
                               str(self.socket), *args], capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def workers(self) -> list[dict[str, Any]]:
        return list(ControlClient(self.socket, timeout=10).call("status")["workers"])

    def org(self) -> dict[str, Any]:
        """The first org's status (state, detail, …); {} while the daemon is not up."""
        try:
            orgs = ControlClient(self.socket, timeout=10).call("orgs")
        except Exception:  # not up yet
            return {}
        return dict(orgs[0]) if orgs else {}

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def kill_all(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


class SalesforceUser:
    """Someone working in the org: creates and edits records through devorg's admin API."""

    def __init__(self, dev: DevOrg, info: OrgInfo) -> None:
        self.base = f"{dev.admin}/orgs/{info.name}"
        self.session = requests.Session()

    def create(self, sobject: str, **values: Any) -> str:
        response = self.session.post(f"{self.base}/records/{sobject}", json=values, timeout=10)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def update(self, sobject: str, record_id: str, **values: Any) -> None:
        response = self.session.patch(f"{self.base}/records/{sobject}/{record_id}",
                                      json=values, timeout=10)
        assert response.status_code in (200, 201), response.text

    def delete(self, sobject: str, record_id: str) -> None:
        response = self.session.delete(f"{self.base}/records/{sobject}/{record_id}", timeout=10)
        assert response.status_code in (200, 201), response.text

    def record(self, record_id: str) -> dict[str, Any]:
        response = self.session.get(f"{self.base}/records/{record_id}", timeout=10)
        response.raise_for_status()
        return dict(response.json()["record"])

    def history(self, record_id: str) -> list[dict[str, Any]]:
        response = self.session.get(f"{self.base}/records/{record_id}/history", timeout=10)
        response.raise_for_status()
        return list(response.json())

    def calls(self) -> int:
        return int(self.session.get(f"{self.base}/calls", timeout=10).json()["used"])

    def set_calls(self, used: int) -> None:
        self.session.patch(f"{self.base}/calls", json={"used": used}, timeout=10)

    def settings(self, **values: Any) -> None:
        response = self.session.patch(f"{self.base}/settings", json=values, timeout=10)
        response.raise_for_status()


@pytest.fixture(autouse=True)
def _stop_all_actors() -> Iterator[None]:
    yield
    stop_every_actor()


dev = devorg_fixture()


@pytest.fixture
def info(dev: DevOrg) -> OrgInfo:
    return dev.orgs[0]


@pytest.fixture
def user(dev: DevOrg, info: OrgInfo) -> SalesforceUser:
    return SalesforceUser(dev, info)


@pytest.fixture
def config_path(tmp_path: Path, dev: DevOrg, info: OrgInfo) -> Path:
    return write_config(tmp_path, dev, [info])


@pytest.fixture
def org_config(config_path: Path) -> OrgConfig:
    config = load_config(config_path)
    assert not config.org_errors, config.org_errors
    return config.orgs[0]


@contextmanager
def provisioned_daemon(tmp_path: Path, dev: DevOrg, infos: list[OrgInfo] | None = None,
                       **config: str) -> Iterator[Daemon]:
    """`ilyd run` on `write_config(..., **config)` for `infos` (every devorg org by
    default), each org provisioned first; stopped on leaving."""
    path = write_config(tmp_path, dev, list(dev.orgs) if infos is None else infos, **config)
    loaded = load_config(path)
    assert not loaded.org_errors, loaded.org_errors
    for org in loaded.orgs:
        provision(org)
    running = Daemon(path)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def provisioned(org_config: OrgConfig) -> OrgConfig:
    """The org with its Ily fields, permission set and PushTopics in place."""
    return provision(org_config)


# The state database where the daemon of `write_config` keeps it.
database = database_fixture()


@pytest.fixture
def pipeline(provisioned: OrgConfig, database: Database) -> Iterator[OrgPipeline]:
    parts = OrgPipeline(provisioned, OrgSecrets.read(provisioned), database,
                        probe_interval=0.2).acquire()
    yield parts
    parts.release()
