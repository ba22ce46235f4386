"""Stopping every actor a test left running, top of the tree first; an org actor that
runs only the parts a test gives it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import pykka

from ilyd.actors.component import Component
from ilyd.actors.context import OrgContext
from ilyd.actors.messages import GetParts
from ilyd.actors.org import OrgActor, stop_org
from ilyd.actors.supervisor import SupervisorActor
from ilyd.config import OrgConfig
from ilyd.store import Database


def stop_every_actor(timeout: float = 10.0) -> None:
    """Stop supervisors, then orgs, then whatever is left.

    An org is stopped with `stop_org`, which sets its stop event before queueing the stop,
    so a call of the org waiting to retry gives up at once; stopped by
    `ActorRegistry.stop_all` alone, an org in such a wait would hold the teardown until
    the wait ended."""
    for kind in (SupervisorActor, OrgActor):
        stopping = []
        for ref in pykka.ActorRegistry.get_by_class(kind):
            with contextlib.suppress(pykka.ActorDeadError):
                stopping.append(stop_org(ref) if kind is OrgActor else ref.stop(block=False))
        for future in stopping:
            with contextlib.suppress(pykka.Timeout):
                future.get(timeout=timeout)
    pykka.ActorRegistry.stop_all(block=True, timeout=timeout)


class _Quiet(pykka.ThreadingActor):
    """Stands in for the supervisor: takes the org's reports and keeps them."""

    use_daemon_thread = True

    def __init__(self) -> None:
        super().__init__()
        self.reports: list[Any] = []

    def on_receive(self, message: Any) -> None:
        self.reports.append(message)


def start_parts(config: OrgConfig, database: Database | None,
                parts: Sequence[tuple[str, Callable[[OrgContext], Component]]],
                supervisor: pykka.ActorRef[Any] | None = None,
                ) -> tuple[pykka.ActorRef[Any], dict[str, Component]]:
    """An org actor running only `parts` (name, factory), started; and the parts by name.

    Answered after the org's start, so its parts have started (their first messages
    queued) when it returns."""
    made: dict[str, Component] = {}

    def keep(name: str, factory: Callable[[OrgContext], Component]) -> Callable[
            [OrgContext], Component]:
        def make(context: OrgContext) -> Component:
            made[name] = factory(context)
            return made[name]
        return make

    org = OrgActor.start(config, 1, supervisor or _Quiet.start(), database,
                         factories=[(name, keep(name, f)) for name, f in parts])
    org.ask(GetParts(), timeout=10)
    return org, made
