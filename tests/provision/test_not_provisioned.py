"""With auto_provision = false an org that is not provisioned says so, and what to run,
instead of looking like a stream in backoff on a channel that does not exist yet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest

from ilyd.actors.messages import GetSnapshot, OrgState, OrgStatus
from ilyd.actors.provisioner import RunProvision, provisioner_for
from ilyd.actors.supervisor import SupervisorActor
from ilyd.config import load_config
from ilyd.store import Database
from tests.helpers.waiting import wait_until

from .conftest import Env


@pytest.fixture(autouse=True)
def _stop_all_actors() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all(block=True, timeout=10)


def _config(tmp_path: Path, env: Env) -> Any:
    org = env.org
    for name, value in (("secret", org.client_secret), ("password", org.password)):
        (tmp_path / name).write_text(value)
        (tmp_path / name).chmod(0o600)
    path = tmp_path / "ilyd.toml"
    path.write_text(
        f'[daemon]\nstate_dir = "{tmp_path}/state"\n[metrics]\nlisten = ""\n'
        f'[[org]]\nname = "acme"\nenvironment = "{env.dev.url}"\nauth = "password"\n'
        f'client_id = "{org.client_id}"\nclient_secret_file = "{tmp_path}/secret"\n'
        f'username = "{org.username}"\npassword_file = "{tmp_path}/password"\n'
        'auto_provision = false\n')
    return load_config(path)


def test_an_org_not_provisioned_is_degraded_naming_the_provision_command_until_it_runs(
        tmp_path: Path, env: Env) -> None:
    database = Database(tmp_path / "state" / "ilyd.db")
    supervisor = SupervisorActor.start(_config(tmp_path, env), database=database)

    def org() -> OrgStatus:
        return supervisor.ask(GetSnapshot(), timeout=5).orgs[0]

    waiting = wait_until(lambda: (o := org()).state is OrgState.DEGRADED and o, timeout=30,
                         what="the org shown as not provisioned")
    assert waiting.last_error == "not provisioned: run ilyd ctl provision acme"
    assert dict(waiting.detail)["not_provisioned"] == waiting.last_error
    assert supervisor.ask(GetSnapshot(), timeout=5).summary() == "1 org: 1 degraded"

    ref = provisioner_for("acme")
    assert ref is not None
    ref.ask(RunProvision(), timeout=60)
    done = wait_until(lambda: "not_provisioned" not in dict((o := org()).detail) and o,
                      timeout=30, what="the not-provisioned mark gone")
    assert not (done.last_error or "").startswith("not provisioned")
    supervisor.stop()
    database.close()
