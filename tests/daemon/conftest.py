"""Fixtures that run the real daemon as a subprocess: `ilyd run --config tmp.toml`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.waiting import wait_until

BIN = Path(sys.executable).parent / "ilyd"
ILYD = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "ilyd"]
SECRETS = {
    "alpha": "alpha-secret-7f3a9c",
    "beta": "beta-secret-0b1e2d",
    "gamma": "gamma-secret-99aa",
    "delta": "delta-secret-4c8e51",
}


def org_toml(name: str, secret_dir: Path) -> str:
    return (
        f'[[org]]\nname = "{name}"\nauth = "client_credentials"\nclient_id = "id-{name}"\n'
        f'environment = "https://{name}.my.salesforce.com"\n'
        f'client_secret_file = "{secret_dir / name}.secret"\n'
    )


@dataclass
class DaemonProcess:
    """A running `ilyd run` and the paths it uses."""

    workdir: Path
    config: Path
    socket: Path
    process: subprocess.Popen[str]
    env: dict[str, str] = field(default_factory=dict)
    # Output is read all along, as journald does: a full pipe would block the daemon's
    # (and its workers') log writes, and with them the daemon.
    _out: list[str] = field(default_factory=list)
    _err: list[str] = field(default_factory=list)
    _readers: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        for stream, into in ((self.process.stdout, self._out), (self.process.stderr, self._err)):
            if stream is not None:
                reader = threading.Thread(target=lambda s=stream, i=into: i.extend(s),
                                          daemon=True)
                reader.start()
                self._readers.append(reader)

    def wait(self, timeout: float) -> tuple[str, str]:
        """Wait for the exit and the end of its output; (stdout, stderr)."""
        self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=timeout)
        return "".join(self._out), "".join(self._err)

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*ILYD, "ctl", "--socket", str(self.socket), *args],
                              capture_output=True, text=True, timeout=60, env=self.env,
                              check=False)

    def ctl_json(self, *args: str) -> Any:
        done = self.ctl("--json", *args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def org_states(self) -> dict[str, str]:
        return {org["name"]: org["state"] for org in self.ctl_json("orgs")}

    def stop(self, timeout: float = 10.0) -> tuple[int, str, str]:
        """SIGTERM and wait; return (exit status, stdout, stderr)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        out, err = self.wait(timeout)
        if self.process.returncode != 0:
            # Shown by pytest with a failing assertion on the status: why it did not exit 0.
            print(f"daemon exited {self.process.returncode}; stderr tail:\n{err[-4000:]}"
                  f"\nstdout tail:\n{out[-4000:]}")
        return self.process.returncode, out, err


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Short paths: a unix socket path must fit in 108 bytes.
    path = Path(tempfile.mkdtemp(prefix="ilyd-", dir="/tmp"))
    (path / "secrets").mkdir()
    for name, value in SECRETS.items():
        secret = path / "secrets" / f"{name}.secret"
        secret.write_text(value)
        secret.chmod(0o600)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def write_config(workdir: Path) -> Callable[..., Path]:
    def write(*orgs: str, extra: str = "", metrics: str = "") -> Path:
        text = (
            f'[daemon]\nstate_dir = "{workdir}/state"\ncontrol_socket = "{workdir}/ctl.sock"\n'
            f'log_level = "debug"\n{extra}'
            f'[metrics]\nlisten = "127.0.0.1:0"\n{metrics}'
            # These orgs never reach Salesforce: the bundled sample may stand in for a source.
            '[[defaults.enrich.provider]]\ntype = "dataset"\npath = "@sample"\n'
            'allow_real_org = true\n'
        )
        text += "".join(org_toml(name, workdir / "secrets") for name in orgs)
        path = workdir / "ilyd.toml"
        path.write_text(text)
        return path

    return write


@pytest.fixture
def start_daemon(workdir: Path) -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(config: Path, env: dict[str, str] | None = None, wait: bool = True) -> DaemonProcess:
        full_env = {**os.environ, **(env or {})}
        process = subprocess.Popen([*ILYD, "run", "--config", str(config)], env=full_env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        daemon = DaemonProcess(workdir, config, workdir / "ctl.sock", process, full_env)
        started.append(daemon)
        if wait:
            wait_until(lambda: process.poll() is not None or daemon.ctl("status").returncode == 0,
                       what="the daemon to answer ctl status")
            assert process.poll() is None, daemon.wait(30)[1]
        return daemon

    yield start
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.process.kill()
            daemon.wait(30)


@pytest.fixture
def notify_socket(workdir: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(workdir / "notify.sock"))
    sock.settimeout(15)
    yield sock
    sock.close()
