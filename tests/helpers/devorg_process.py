"""devorg for the tests, the one way to get one: in the test's process on a free port
(`start_devorg`, and `devorg_fixture` for a conftest's `dev`), or `ilyd devorg --data
FILE` in a process of its own on fixed ports, stopped and started like a service
(`DevorgProcess`: for the tests that restart devorg under a running daemon)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.helpers.waiting import wait_until

if TYPE_CHECKING:
    from ilyd.devorg import DevOrg


@contextmanager
def start_devorg(**options: Any) -> Iterator[DevOrg]:
    """A devorg serving on a free loopback port for the block; `options` go to `DevOrg`
    (orgs, sandbox_orgs, seed_records, tls, data, host, ...)."""
    # Imported here: the pure tests of a folder whose conftest offers `dev` (soql, limits)
    # run without loading devorg.
    from ilyd.devorg import DevOrg

    with DevOrg(**{"host": "127.0.0.1", "port": 0, **options}) as server:
        yield server


def devorg_fixture(scope: str = "function", **options: Any) -> Any:
    """A devorg fixture, assigned under the name tests ask for (`dev = devorg_fixture()`,
    `tls_dev = devorg_fixture(tls=True)`): `start_devorg(**options)` for each test, or
    once per module with scope="module"."""

    @pytest.fixture(scope=scope)
    def dev() -> Iterator[DevOrg]:
        with start_devorg(**options) as server:
            yield server

    return dev


def free_ports(count: int) -> list[int]:
    """Ports free right now, all different (held open together while they are picked)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


class DevorgProcess:
    """`ilyd devorg --data FILE` on fixed ports (its own, and its orgs' My Domain host)."""

    def __init__(self, data: Path, *, orgs: int = 1) -> None:
        self.data = data
        self.orgs = orgs
        self.port, self.my_domain_port = free_ports(2)
        self.credentials = data.parent / "devorg-credentials.json"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> dict[str, object]:
        """Start it; returns the credentials it wrote (every org's)."""
        self.credentials.unlink(missing_ok=True)
        log = (self.data.parent / "devorg.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ilyd", "devorg", "--listen", f"127.0.0.1:{self.port}",
             "--my-domain-port", str(self.my_domain_port), "--data", str(self.data),
             "--orgs", str(self.orgs), "--credentials-out", str(self.credentials)],
            stdout=log, stderr=subprocess.STDOUT)
        process = self.process
        wait_until(lambda: self.credentials.exists() or process.poll() is not None,
                   timeout=30, what="devorg to start")
        assert process.poll() is None, (self.data.parent / "devorg.log").read_text()
        return dict(json.loads(self.credentials.read_text()))

    def stop(self) -> None:
        """Stop it (SIGTERM), waiting for the process to end."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
