"""An org stops its children together under one deadline, the writer after the others,
and names the ones still busy when the deadline passed."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pykka

from ilyd.actors.context import OrgContext
from ilyd.actors.org import Org
from ilyd.config import Config
from tests.helpers.waiting import wait_until


class _Child(pykka.ThreadingActor):
    """A child that, once told "work", is busy until `release` is set; on stop it notes
    whether `watch` (another child) was still running."""

    use_daemon_thread = True

    def __init__(self, release: threading.Event, seen: dict[str, bool], name: str,
                 watch: Callable[[], pykka.ActorRef[Any] | None]) -> None:
        super().__init__()
        self._release, self._seen, self._name, self._watch = release, seen, name, watch

    def on_receive(self, message: Any) -> None:
        self._release.wait(30)

    def on_stop(self) -> None:
        watched = self._watch()
        self._seen[self._name] = watched is not None and watched.is_alive()


class _Family:
    """Children by name, started through the org's factories."""

    def __init__(self) -> None:
        self.refs: dict[str, pykka.ActorRef[Any]] = {}
        self.release = threading.Event()
        self.seen: dict[str, bool] = {}

    def factory(self, name: str, watch: str = "") -> tuple[str, Any]:
        def start(_context: OrgContext) -> pykka.ActorRef[Any]:
            self.refs[name] = _Child.start(self.release, self.seen, name,
                                           lambda: self.refs.get(watch))
            return self.refs[name]
        return name, start


class _Supervisor(pykka.ThreadingActor):
    """Takes whatever the org's children report and does nothing with it."""

    use_daemon_thread = True

    def on_receive(self, message: Any) -> None:
        return None


def _org(config: Config, *children: tuple[str, Any]) -> Org:
    org = Org(config.orgs[0], 1, _Supervisor.start(), None, factories=children)
    org.start()
    return org


def _stop_in_background(org: Org, timeout: float) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    threading.Thread(target=lambda: result.setdefault("late", org.stop(timeout)),
                     daemon=True).start()
    return result


def test_idle_children_stop_while_a_busy_one_is_still_working(
        make_config: Callable[..., Config]) -> None:
    family = _Family()
    org = _org(make_config("a"), family.factory("first"), family.factory("second"),
               family.factory("busy"))
    family.refs["busy"].tell("work")
    result = _stop_in_background(org, timeout=30)
    # The busy child was started last, so it is asked first: the others are not kept
    # waiting behind it.
    wait_until(lambda: not family.refs["first"].is_alive()
                       and not family.refs["second"].is_alive(),
                       what="the idle children stopped while the busy one works")
    assert family.refs["busy"].is_alive()
    family.release.set()
    wait_until(lambda: "late" in result, what="the org's stop returned")
    assert result["late"] == []


def test_the_writer_is_asked_to_stop_only_once_the_enricher_has_stopped(
        make_config: Callable[..., Config]) -> None:
    family = _Family()
    org = _org(make_config("a"), family.factory("writer"),
               family.factory("enricher", watch="writer"))
    family.refs["enricher"].tell("work")
    result = _stop_in_background(org, timeout=30)
    family.release.set()
    wait_until(lambda: "late" in result, what="the org's stop returned")
    assert family.seen == {"enricher": True, "writer": False}
    assert result["late"] == []


def test_children_still_busy_at_the_deadline_are_named_and_stop_once_free(
        make_config: Callable[..., Config]) -> None:
    family = _Family()
    org = _org(make_config("a"), family.factory("idle"), family.factory("stuck"),
               family.factory("also-stuck"))
    family.refs["stuck"].tell("work")
    family.refs["also-stuck"].tell("work")
    assert sorted(org.stop(timeout=0.2)) == ["also-stuck", "stuck"]
    assert not family.refs["idle"].is_alive()
    family.release.set()
    wait_until(lambda: not any(ref.is_alive() for ref in family.refs.values()),
                       what="the late children stopped once free")
