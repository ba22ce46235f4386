"""Fixtures of the fuzz suite: a real `ilyd run` daemon (no orgs) shared by a module."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.waiting import wait_until

BIN = Path(sys.executable).parent / "ilyd"
ILYD = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "ilyd"]


def _status_ok(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(path))
            sock.sendall(b'{"v":1,"id":1,"verb":"status"}\n')
            return json.loads(sock.makefile("rb").readline()).get("ok") is True
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="module")
def daemon_socket() -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """A running daemon's control socket path and its process."""
    # Short path: a unix socket path must fit in 108 bytes.
    workdir = Path(tempfile.mkdtemp(prefix="ilydfz-", dir="/tmp"))
    config = workdir / "ilyd.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{workdir}/state"\ncontrol_socket = "{workdir}/c.sock"\n'
        '[metrics]\nlisten = "127.0.0.1:0"\n'
    )
    log = (workdir / "daemon.log").open("wb")
    process = subprocess.Popen([*ILYD, "run", "--config", str(config)], stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: process.poll() is not None or _status_ok(workdir / "c.sock"),
                   what="the daemon to answer status")
        assert process.poll() is None, (workdir / "daemon.log").read_text()
        yield workdir / "c.sock", process
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)
