"""The gate on start-up provisioning runs: so many at once, the others in turn."""

from __future__ import annotations

from ilyd.provision.gate import RunGate, TurnState


class Owner:
    """A run's owner: counts its admissions."""

    def __init__(self) -> None:
        self.admitted = 0

    def admit(self) -> None:
        self.admitted += 1


def test_the_gate_runs_its_size_at_once_and_admits_the_next_as_one_ends():
    gate = RunGate(2)
    owners = [Owner() for _ in range(4)]
    turns = [gate.enter(owner.admit) for owner in owners]
    assert [t.state for t in turns] == [TurnState.RUNNING, TurnState.RUNNING,
                                       TurnState.WAITING, TurnState.WAITING]
    gate.done(turns[0])
    assert (turns[2].state, owners[2].admitted, owners[3].admitted) == (TurnState.RUNNING, 1, 0)
    gate.done(turns[0])  # again: nothing more is admitted
    assert owners[3].admitted == 0
    gate.done(turns[1])
    assert (turns[3].state, owners[3].admitted) == (TurnState.RUNNING, 1)


def test_a_waiting_run_whose_org_stopped_leaves_the_queue_and_its_turn_passes_on():
    gate = RunGate(1)
    first, stopped, last = Owner(), Owner(), Owner()
    running = gate.enter(first.admit)
    stopped_turn = gate.enter(stopped.admit)
    last_turn = gate.enter(last.admit)
    gate.done(stopped_turn)  # its org stopped while it waited
    gate.done(running)
    assert (stopped.admitted, last.admitted) == (0, 1)
    assert last_turn.state is TurnState.RUNNING
    gate.done(last_turn)
    assert gate.enter(Owner().admit).state is TurnState.RUNNING  # room again
