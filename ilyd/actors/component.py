"""An org's parts as plain components of its one actor: `Component`, `ComponentRef`,
`ComponentHost`.

An org is one pykka actor (`ilyd.actors.org.OrgActor`) and one thread. Its parts — the
provisioner, the feed (subscriber or poller), the enricher, the writer, the resync
control — are components it hosts: each owns its own state and is driven by messages to
the org's actor, so no part needs a lock for what only messages touch. A part's
`ComponentRef` looks like the bit of `pykka.ActorRef` the parts use: `tell` from any
thread (a timer on `TIMERS`, the lookup pool, the Bayeux client), `ask` with a timeout
from the control thread, `is_alive`; once the part or its org has stopped, both raise
`pykka.ActorDeadError`.

A part's exception in `on_receive` is its org's failure: the org actor stops every part
and the supervisor restarts the org after its backoff. An `ask` answers the asker with
the exception instead, as pykka does.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka
import structlog

__all__ = ["Component", "ComponentHost", "ComponentRef", "Routed"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Routed:
    """A message for one part of an org, in the org actor's mailbox."""

    component: str
    message: Any
    asked: bool = False


class Component:
    """One part of an org, run in the org actor's thread.

    `on_start` runs when the org starts it, `on_receive` for each message told or asked
    through its `ref`, `on_stop` when the org stops (parts stop in reverse start order).
    A part that leaves a thread of its own running past its stop (a resync run, a held
    poll) says so in `late()`.
    """

    ref: ComponentRef
    host: ComponentHost
    # Monotonic time by which `on_stop` should return; set by the host before calling it.
    deadline: float = math.inf

    def on_start(self) -> None:
        """The part starts (in the org actor's thread)."""

    def on_stop(self) -> None:
        """The part stops (in the org actor's thread); the org may be stopping."""

    def on_receive(self, message: Any) -> Any:
        """Handle one message told or asked through `ref`."""
        raise TypeError(f"{type(self).__name__} got an unexpected message: "
                        f"{type(message).__name__}")

    def late(self) -> bool:
        """Whether a thread the part started is still running after `on_stop`."""
        return False

    def time_left(self) -> float:
        """Seconds left of the stop deadline (never negative)."""
        return max(0.0, self.deadline - time.monotonic())


class ComponentRef:
    """A part's address: messages go to its org actor's mailbox, routed by the part's name
    (or, told by the org's own thread while it handles a message, straight after that
    message: see `ComponentHost.deliver`)."""

    def __init__(self, org: pykka.ActorRef[Any], name: str,
                 host: ComponentHost | None = None) -> None:
        self._org = org
        self._host = host
        self.name = name
        self.running = False

    def is_alive(self) -> bool:
        """Started, not yet stopped, its org not stopped."""
        return self.running and self._org.is_alive()

    def tell(self, message: Any) -> None:
        """Queue `message` for the part (any thread; never blocks)."""
        self._check()
        routed = Routed(self.name, message)
        if self._host is None or not self._host.tell_local(routed):
            self._org.tell(routed)

    def ask(self, message: Any, timeout: float | None = None) -> Any:
        """The part's answer to `message`; raises its exception, or pykka.Timeout."""
        self._check()
        return self._org.ask(Routed(self.name, message, asked=True), timeout=timeout)

    def _check(self) -> None:
        if not self.is_alive():
            raise pykka.ActorDeadError(f"{self.name} of {self._org} is not running")


class ComponentHost:
    """The parts of one org, by name in start order; used only in the org actor's thread
    (other threads read `ComponentRef.is_alive`, a flag).

    Once `stopping` is set the parts take no new work: messages told them are dropped,
    but for the parts in `keep_taking` (the writer, which then only queues what it is
    handed, to give it back to the inbox when it stops)."""

    def __init__(self, org: pykka.ActorRef[Any], stopping: threading.Event,
                 keep_taking: frozenset[str] = frozenset()) -> None:
        self._org = org
        self._stopping = stopping
        self._keep_taking = keep_taking
        self._parts: dict[str, Component] = {}
        self._stopped: dict[str, Component] = {}
        # Messages the parts told one another on the org's thread while it handled a
        # message from the mailbox: handed over right after it (the enricher's results
        # to the writer above all), without a trip through the mailbox and its locks.
        # Those they tell meanwhile go through the mailbox, so a chain of them never
        # holds up what waits there.
        self._thread = threading.get_ident()
        self._local: collections.deque[Routed] = collections.deque()
        self._taking_local = False

    def start(self, name: str, component: Component) -> ComponentRef:
        """Start `component` as part `name` (raises what its on_start raises)."""
        if name in self._parts:
            raise ValueError(f"the org already has a part named {name!r}")
        component.ref = ComponentRef(self._org, name, self)
        component.host = self
        self._parts[name] = component
        log.debug("org_part_starting", part=name)
        component.ref.running = True  # on_start may tell the part its first message
        try:
            component.on_start()
        except BaseException:
            component.ref.running = False
            raise
        return component.ref

    def get(self, name: str) -> Component | None:
        """The running part `name`, if any."""
        part = self._parts.get(name)
        return part if part is not None and part.ref.running else None

    def names(self) -> tuple[tuple[str, str], ...]:
        """(name, kind) of each running part, in start order."""
        return tuple((n, type(p).__name__) for n, p in self._parts.items() if p.ref.running)

    def tell_local(self, message: Routed) -> bool:
        """Take a told message to be handed over after the message being handled, if
        it is told on the org's thread while a told one from the mailbox is (else
        False)."""
        if (not self._taking_local or threading.get_ident() != self._thread
                or self._stopping.is_set()):
            # Once the org stops, what the parts tell one another waits behind the stop
            # (the writer is handed it after the others stopped).
            return False
        self._local.append(message)
        return True

    def take_local(self, names: frozenset[str]) -> list[Routed]:
        """Take the messages for the parts in `names` still waiting to be handed over
        (a message before them failed): for the org's stop."""
        taken = [m for m in self._local if m.component in names]
        self._local.clear()
        return taken

    def deliver(self, message: Routed) -> Any:
        """Hand a message from the mailbox to its part, then the messages the parts told
        one another meanwhile (see `tell_local`). A told message for a part that has
        stopped (a timer that fired meanwhile), or once the org is stopping, is dropped;
        an asked one raises ActorDeadError."""
        # An ask's answer waits for nothing else (its parts' tells take the mailbox).
        self._taking_local = not message.asked
        try:
            result = self._deliver(message)
        finally:
            self._taking_local = False
        local = self._local
        while local:
            self._deliver(local[0])
            local.popleft()  # after: one that fails is still there for the org's stop
        return result

    def _deliver(self, message: Routed) -> Any:
        part = self.get(message.component)
        dropped = (self._stopping.is_set() and not message.asked
                   and message.component not in self._keep_taking)
        if part is None or dropped:
            if message.asked:
                raise pykka.ActorDeadError(f"{message.component} is not running")
            return None
        return part.on_receive(message.message)

    def stopped(self, names: list[str]) -> list[Component]:
        """The stopped parts named in `names`."""
        return [self._stopped[n] for n in names if n in self._stopped]

    def stop(self, name: str, deadline: float) -> bool:
        """Stop part `name`; whether it left a thread running (see `Component.late`)."""
        part = self._parts.pop(name, None)
        if part is not None:
            self._stopped[name] = part
        if part is None or not part.ref.running:
            return False
        part.ref.running = False
        part.deadline = deadline
        try:
            part.on_stop()
        except Exception:  # one part's failing stop must not keep the others running
            log.exception("org_part_stop_failed", part=name)
        return part.late()

    def stop_all(self, deadline: float, last: frozenset[str] = frozenset(),
                 before_last: Callable[[], None] | None = None) -> list[str]:
        """Stop every part, last started first, those named in `last` after the others
        (`before_last` runs in between); the names of those that left a thread running."""
        order = list(self._parts)[::-1]
        late = [n for n in order if n not in last and self.stop(n, deadline)]
        if before_last is not None:
            try:
                before_last()
            except Exception:
                log.exception("org_part_stop_failed", part=",".join(sorted(last)))
        return late + [n for n in order if n in last and self.stop(n, deadline)]
