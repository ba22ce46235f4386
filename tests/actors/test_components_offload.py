"""The offload threads for an org's write: a call that hangs never holds up another's,
an idle thread is reused, and none is kept once idle long enough."""

from __future__ import annotations

import threading

from ilyd.actors.offload import Offload
from tests.helpers.waiting import wait_until


def _alive(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(f"{name}-")]


def test_a_hanging_call_does_not_hold_up_the_next_one() -> None:
    offload = Offload("test-hang", idle=0.2)
    release, ran = threading.Event(), threading.Event()
    offload.run(lambda: release.wait(30))
    offload.run(ran.set)
    assert ran.wait(10)
    release.set()


def test_an_idle_thread_takes_the_next_call_and_ends_once_idle_long_enough() -> None:
    offload = Offload("test-idle", idle=0.5)
    first, second = threading.Event(), threading.Event()
    names: list[str] = []
    offload.run(lambda: (names.append(threading.current_thread().name), first.set()))
    assert first.wait(10)
    wait_until(lambda: offload._idle == 1, what="the thread idle")
    offload.run(lambda: (names.append(threading.current_thread().name), second.set()))
    assert second.wait(10)
    assert names[0] == names[1]
    wait_until(lambda: not _alive("test-idle"), what="the idle thread ended")
