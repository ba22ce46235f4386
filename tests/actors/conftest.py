"""Fixtures for actor tests: org configs with real secret files, and actor cleanup."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest

from ilyd.actors.messages import GetSnapshot, OrgState, SupervisorSnapshot
from ilyd.actors.restart import RestartPolicy
from ilyd.actors.supervisor import SupervisorActor
from ilyd.config import Config, load_config
from ilyd.store import Database
from tests.helpers.actors import stop_every_actor
from tests.helpers.waiting import wait_until

ASK_TIMEOUT = 5.0
# Quick restarts: an org that fails to start twice is FATAL within a second.
FAST_RESTART = RestartPolicy(start_secs=30, start_retries=2, backoff_initial=0.05,
                             backoff_max=0.2)
# An org of make_config is up in either state: it runs, and is degraded once its stream
# backs off, since Salesforce is never reachable from here.
UP = frozenset({OrgState.RUNNING, OrgState.DEGRADED})


@pytest.fixture(autouse=True)
def _stop_all_actors() -> Iterator[None]:
    yield
    stop_every_actor()


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    """Build a Config with one client-credentials org per name (each with its secret file)."""

    def make(*names: str, extra: str = "") -> Config:
        # These orgs never reach Salesforce: the bundled sample may stand in for a source.
        text = (f'[daemon]\nstate_dir = "{tmp_path}/state"\n' + extra
                + '[[defaults.enrich.provider]]\ntype = "dataset"\npath = "@sample"\n'
                'allow_real_org = true\n')
        for name in names:
            secret = tmp_path / f"{name}.secret"
            if not secret.exists():
                secret.write_text(f"secret-of-{name}")
                secret.chmod(0o600)
            text += (
                f'[[org]]\nname = "{name}"\nauth = "client_credentials"\n'
                f'environment = "https://{name}.my.salesforce.com"\n'
                f'client_id = "id-{name}"\nclient_secret_file = "{secret}"\n'
            )
        path = tmp_path / "ilyd.toml"
        path.write_text(text)
        return load_config(path)

    return make


def start_supervisor(config: Config, tmp_path: Path,
                     policy: RestartPolicy = FAST_RESTART) -> pykka.ActorRef[Any]:
    """A supervisor over `config` with its own state database, as the daemon runs it."""
    return SupervisorActor.start(config, policy=policy, database=Database(tmp_path / "state.db"))


def snapshot(supervisor: pykka.ActorRef[Any]) -> SupervisorSnapshot:
    return supervisor.ask(GetSnapshot(), timeout=ASK_TIMEOUT)


def states(supervisor: pykka.ActorRef[Any]) -> dict[str, OrgState]:
    return {org.name: org.state for org in snapshot(supervisor).orgs}


def wait_for_states(
    supervisor: pykka.ActorRef[Any], expected: dict[str, OrgState | frozenset[OrgState]],
    timeout: float = 10.0,
) -> dict[str, OrgState]:
    """Wait until the orgs named in `expected` are in those states (or in one of a set of
    them, such as UP); the states then."""

    def reached() -> dict[str, OrgState] | None:
        current = states(supervisor)
        return current if all(current.get(k) in (v if isinstance(v, frozenset) else {v})
                              for k, v in expected.items()) else None

    return dict(wait_until(reached, timeout=timeout, what=f"orgs in {expected}"))
