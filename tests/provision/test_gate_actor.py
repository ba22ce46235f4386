"""An org's start-up run waits for its turn at the process's gate, then runs; an org
stopped while it waits stops at once and leaves the queue."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest

from ilyd.actors import provisioner
from ilyd.actors.messages import GetSnapshot, OrgState
from ilyd.actors.supervisor import SupervisorActor
from ilyd.provision.gate import RunGate, TurnState
from ilyd.store import Database
from tests.helpers.waiting import wait_until

from .conftest import Env
from .test_actor import _config


@pytest.fixture(autouse=True)
def _stop_all_actors() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all(block=True, timeout=10)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> RunGate:
    """A gate of one turn, which the test holds to begin with."""
    gate = RunGate(1)
    monkeypatch.setattr(provisioner, "_GATE", gate)
    return gate


def _detail(supervisor: pykka.ActorRef[Any]) -> tuple[OrgState, dict[str, Any]]:
    org = supervisor.ask(GetSnapshot(), timeout=5).orgs[0]
    return org.state, dict(org.detail)


def _start_with_the_gate_held(tmp_path: Path, env: Env, gate: RunGate
                              ) -> tuple[Any, Database, pykka.ActorRef[Any]]:
    """Take the gate's one turn, then start the org's daemon: (the turn, the state
    database, the supervisor) once the org has started."""
    held = gate.enter(lambda: None)
    database = Database(tmp_path / "state" / "ilyd.db")
    supervisor = SupervisorActor.start(_config(tmp_path, env), database=database)
    wait_until(lambda: _detail(supervisor)[0] is not OrgState.STARTING,
               what="the org started")
    return held, database, supervisor


def test_a_start_up_run_waits_for_a_turn_at_the_gate_then_provisions(
        tmp_path: Path, env: Env, gate: RunGate) -> None:
    held, database, supervisor = _start_with_the_gate_held(tmp_path, env, gate)
    assert "mode" not in _detail(supervisor)[1]  # its run waits for the held turn
    gate.done(held)
    wait_until(lambda: "mode" in _detail(supervisor)[1], what="the run's mode published")
    supervisor.stop()
    database.close()


def test_an_org_stopped_while_its_run_waits_stops_and_leaves_the_queue(
        tmp_path: Path, env: Env, gate: RunGate) -> None:
    held, database, supervisor = _start_with_the_gate_held(tmp_path, env, gate)
    supervisor.stop(timeout=10)
    database.close()
    gate.done(held)
    assert gate.enter(lambda: None).state is TurnState.RUNNING  # no one else waits
