"""`RunGate`: at most so many provisioning runs at once in a process, the others in turn.

A cold start's run is some two dozen calls to Salesforce. A thousand orgs starting together
each run theirs on their own thread, and a thousand threads waking from their sockets keep
the interpreter's lock passing between them: the supervisor's thread, which answers the
daemon's liveness check, then gets it seconds apart. A waiting turn is admitted by a
callback, called from the thread of the run that ended.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["RunGate", "Turn", "TurnState"]


class TurnState(StrEnum):
    """Where a turn is: waiting for room, running, or done (ended, or its org gone)."""

    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"


@dataclass(eq=False)
class Turn:
    """One run's place at the gate. `admit` tells its owner to run now."""

    admit: Callable[[], None]
    state: TurnState = TurnState.WAITING


class RunGate:
    """Admits `size` turns at once; the others run in the order they asked."""

    def __init__(self, size: int) -> None:
        self._lock = threading.Lock()
        self._free = size
        self._queue: deque[Turn] = deque()

    def enter(self, admit: Callable[[], None]) -> Turn:
        """A turn: RUNNING at once when there is room, else WAITING until `admit` is
        called (from the thread of a run that ended)."""
        turn = Turn(admit)
        with self._lock:
            if self._free > 0:
                self._free -= 1
                turn.state = TurnState.RUNNING
            else:
                self._queue.append(turn)
        return turn

    def done(self, turn: Turn) -> None:
        """The turn's run ended, or its owner stops: the next waiting turn runs. Calling
        it again does nothing."""
        with self._lock:
            was, turn.state = turn.state, TurnState.DONE
            if was is TurnState.DONE:
                return
            if was is TurnState.WAITING:
                self._queue.remove(turn)
                return
        self._pass_on()

    def _pass_on(self) -> None:
        with self._lock:
            if not self._queue:
                self._free += 1
                return
            turn = self._queue.popleft()
            turn.state = TurnState.RUNNING
        turn.admit()
