"""Stopping every actor a test left running, top of the tree first."""

from __future__ import annotations

import contextlib

import pykka

from ilyd.actors.org import OrgActor
from ilyd.actors.supervisor import SupervisorActor


def stop_every_actor(timeout: float = 10.0) -> None:
    """Stop supervisors, then orgs, then whatever is left.

    An org sets its stop event before it stops its children, so a child waiting to retry
    a call gives up at once; stopped by `ActorRegistry.stop_all` alone, a child in such a
    wait would hold the teardown until the wait ended."""
    for kind in (SupervisorActor, OrgActor):
        stopping = []
        for ref in pykka.ActorRegistry.get_by_class(kind):
            with contextlib.suppress(pykka.ActorDeadError):
                stopping.append(ref.stop(block=False))
        for future in stopping:
            with contextlib.suppress(pykka.Timeout):
                future.get(timeout=timeout)
    pykka.ActorRegistry.stop_all(block=True, timeout=timeout)
