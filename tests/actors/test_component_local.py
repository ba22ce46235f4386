"""A part's tell to another part on the org's own thread (the enricher handing results to
the writer) is handed over right after the message that told it, not behind the
messages waiting in the org's mailbox."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ilyd.actors.component import Component
from ilyd.actors.context import OrgContext
from ilyd.config import Config
from tests.helpers.actors import start_parts
from tests.helpers.waiting import wait_until


class _Teller(Component):
    """Tells its peer on "go"; waits on `release` when told "hold"."""

    def __init__(self, peer: Callable[[], Component]) -> None:
        self.peer = peer
        self.release = threading.Event()
        self.holding = threading.Event()

    def on_receive(self, message: Any) -> Any:
        if message == "hold":
            self.holding.set()
            self.release.wait(10)
        elif message == "go":
            self.peer().ref.tell("from-teller")
        return None


class _Recorder(Component):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_receive(self, message: Any) -> Any:
        self.seen.append(message)
        return None


def test_a_tell_between_parts_on_the_orgs_thread_comes_before_the_mailbox(
        make_config: Callable[..., Config]) -> None:
    config = make_config("acme").orgs[0]
    made: dict[str, Component] = {}

    def recorder(_context: OrgContext) -> Component:
        return _Recorder()

    def teller(_context: OrgContext) -> Component:
        return _Teller(lambda: made["recorder"])

    _org, made = start_parts(config, None, [("recorder", recorder), ("teller", teller)])
    held = made["teller"]
    assert isinstance(held, _Teller)
    held.ref.tell("hold")
    assert held.holding.wait(10)
    held.ref.tell("go")  # both wait in the mailbox, "go" first
    made["recorder"].ref.tell("from-mailbox")
    held.release.set()
    seen = made["recorder"].seen  # type: ignore[attr-defined]
    wait_until(lambda: len(seen) == 2, timeout=10, what="both messages recorded")
    assert seen == ["from-teller", "from-mailbox"]
