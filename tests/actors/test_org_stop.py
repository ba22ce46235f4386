"""An org stops its parts last started first and the writer after the others, hands the
writer what was still queued for it, takes no new work once asked to stop, and names the
parts that left a thread running past its deadline."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pykka
from structlog.testing import capture_logs

from ilyd.actors.component import Component
from ilyd.actors.context import OrgContext
from ilyd.actors.messages import GetParts
from ilyd.actors.org import OrgActor, stop_org
from ilyd.config import Config
from tests.helpers.waiting import wait_until


class _Supervisor(pykka.ThreadingActor):
    """Takes whatever the org reports and does nothing with it."""

    use_daemon_thread = True

    def on_receive(self, message: Any) -> None:
        return None


class _Family:
    """What the parts saw, in order, across the parts of one org."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.release = threading.Event()
        self.busy = threading.Event()
        self.parts: dict[str, _Part] = {}

    def factory(self, name: str, **kwargs: Any) -> tuple[str, Callable[[OrgContext], Any]]:
        def make(_context: OrgContext) -> Component:
            self.parts[name] = _Part(self, name, **kwargs)
            return self.parts[name]
        return name, make


class _Part(Component):
    """Notes its messages and its stop. Told "work", it is busy until `release`, then
    tells `hand_to` (another part) "item"; told "thread", it starts a thread that runs
    until `release`."""

    def __init__(self, family: _Family, name: str, hand_to: str = "") -> None:
        self.family, self.name, self.hand_to = family, name, hand_to
        self.thread: threading.Thread | None = None

    def on_receive(self, message: Any) -> Any:
        self.family.seen.append(f"{self.name} got {message}")
        if message == "work":
            self.family.busy.set()
            self.family.release.wait(30)
            if self.hand_to:
                self.family.parts[self.hand_to].ref.tell("item")
        elif message == "thread":
            self.thread = threading.Thread(target=self.family.release.wait, args=(30,),
                                           daemon=True)
            self.thread.start()
        return self.name

    def on_stop(self) -> None:
        self.family.seen.append(f"{self.name} stopped")
        if self.thread is not None:
            self.thread.join(self.time_left())

    def late(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


def _org(config: Config, *parts: tuple[str, Any]) -> pykka.ActorRef[Any]:
    """A started org (asked once: the answer comes after its parts started)."""
    org = OrgActor.start(config.orgs[0], 1, _Supervisor.start(), None, factories=parts)
    assert [name for name, _ in org.ask(GetParts(), timeout=10)] == [n for n, _ in parts]
    return org


def test_parts_stop_last_started_first_and_the_writer_after_the_others(
        make_config: Callable[..., Config]) -> None:
    family = _Family()
    org = _org(make_config("a"), family.factory("provisioner"), family.factory("writer"),
               family.factory("enricher"), family.factory("feed"))
    stop_org(org).get(timeout=10)
    assert family.seen == ["feed stopped", "enricher stopped", "provisioner stopped",
                           "writer stopped"]


def test_the_writer_is_handed_what_the_enricher_told_it_after_the_stop_was_asked(
        make_config: Callable[..., Config]) -> None:
    family = _Family()
    org = _org(make_config("a"), family.factory("writer"),
               family.factory("enricher", hand_to="writer"))
    family.parts["enricher"].ref.tell("work")
    wait_until(family.busy.is_set, what="the enricher busy")
    stopped = stop_org(org)  # queued behind the enricher's work
    family.release.set()  # the enricher hands the writer an item, queued behind the stop
    stopped.get(timeout=10)
    assert family.seen == ["enricher got work", "enricher stopped", "writer got item",
                           "writer stopped"]


def test_an_org_asked_to_stop_drops_the_work_queued_behind_its_busy_part(
        make_config: Callable[..., Config]) -> None:
    family = _Family()
    org = _org(make_config("a"), family.factory("enricher"), family.factory("feed"))
    family.parts["feed"].ref.tell("work")
    wait_until(family.busy.is_set, what="the feed busy")
    family.parts["enricher"].ref.tell("round")  # queued behind the feed's work
    stopped = stop_org(org)
    family.release.set()
    stopped.get(timeout=10)
    assert family.seen == ["feed got work", "feed stopped", "enricher stopped"]


def test_a_part_asked_through_its_ref_answers_and_raises_once_the_org_stopped(
        make_config: Callable[..., Config]) -> None:
    family = _Family()
    org = _org(make_config("a"), family.factory("resync"))
    ref = family.parts["resync"].ref
    assert ref.ask("status", timeout=5) == "resync"
    stop_org(org).get(timeout=10)
    assert not ref.is_alive()
    try:
        ref.tell("status")
    except pykka.ActorDeadError:
        pass
    else:
        raise AssertionError("a stopped org's part took a message")


def test_a_part_whose_thread_outlives_the_deadline_is_named_once(
        make_config: Callable[..., Config]) -> None:
    family = _Family()
    org = _org(make_config("a"), family.factory("idle"), family.factory("resync"))
    family.parts["resync"].ref.ask("thread", timeout=5)
    with capture_logs() as logs:
        stop_org(org).get(timeout=30)
    said = [entry for entry in logs if entry["event"] == "org_children_not_stopped"]
    assert [entry["children"] for entry in said] == [["resync"]]
    assert family.seen[-2:] == ["resync stopped", "idle stopped"]
    family.release.set()
