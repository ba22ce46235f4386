"""The daemon survives a supervisor too busy starting its orgs to answer the first ask.

With ~100 orgs the supervisor's first snapshot can take longer than ASK_TIMEOUT (every
org's start competes for the GIL); the daemon must keep running and report its status
once the supervisor answers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest

from ilyd.config import load_config
from ilyd.daemon.process import Daemon


class _BusySupervisor(pykka.ThreadingActor):
    """Answers nothing until released: a supervisor still launching its orgs."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self._release = release

    def on_receive(self, message: Any) -> None:
        self._release.wait(30)


@pytest.fixture
def busy() -> Iterator[pykka.ActorRef[Any]]:
    release = threading.Event()
    ref = _BusySupervisor.start(release)
    yield ref
    release.set()
    ref.stop(block=True, timeout=10)


def test_ready_is_sent_without_a_status_when_the_supervisor_is_still_busy(
        tmp_path: Path, busy: pykka.ActorRef[Any]) -> None:
    path = tmp_path / "ilyd.toml"
    path.write_text(f'[daemon]\nstate_dir = "{tmp_path}/state"\n'
                    f'control_socket = "{tmp_path}/control.sock"\n')
    daemon = Daemon(load_config(path))
    daemon.supervisor = busy
    assert daemon._startup_status() == "starting 0 org(s)"
