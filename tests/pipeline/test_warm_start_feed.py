"""An org is fed by one part, decided once per start: a streaming org runs the
subscriber and no poller; an org whose facts say polling runs the poller and, once that
is stored, starts no subscriber at all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pykka

from ilyd.actors.messages import GetParts, GetSnapshot
from ilyd.actors.org import OrgActor
from ilyd.actors.poller import PollerComponent
from ilyd.actors.subscriber import SubscriberComponent
from ilyd.actors.supervisor import SupervisorActor
from ilyd.config import load_config
from ilyd.store import Database
from tests.pipeline.conftest import SalesforceUser, wait_until


def detail(supervisor: pykka.ActorRef[Any]) -> dict[str, Any]:
    return dict(supervisor.ask(GetSnapshot(), timeout=5).orgs[0].detail)


def running(kind: type) -> int:
    """How many parts of `kind` the running orgs have."""
    return sum(part == kind.__name__
               for org in pykka.ActorRegistry.get_by_class(OrgActor)
               for _, part in org.ask(GetParts(), timeout=5))


def test_a_streaming_org_runs_the_subscriber_and_no_poller(
        provisioned: object, config_path: Path, database: Database) -> None:
    supervisor = SupervisorActor.start(load_config(config_path), database=database)
    wait_until(lambda: detail(supervisor).get("connection") == "connected", timeout=60,
               what="the org subscribed")
    assert (running(SubscriberComponent), running(PollerComponent)) == (1, 0)
    supervisor.stop()


def test_a_warm_start_of_a_polling_org_starts_the_poller_and_no_subscriber(
        provisioned: object, config_path: Path, database: Database,
        user: SalesforceUser) -> None:
    user.settings(streaming_enabled=False)
    first = SupervisorActor.start(load_config(config_path), database=database)
    wait_until(lambda: detail(first).get("polling"), timeout=60, what="the first start polling")
    first.stop()
    assert running(PollerComponent) == 0
    again = SupervisorActor.start(load_config(config_path), database=database)
    wait_until(lambda: detail(again).get("polling"), timeout=60, what="the warm start polling")
    assert (running(SubscriberComponent), running(PollerComponent)) == (0, 1)
    again.stop()
