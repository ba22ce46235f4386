"""The provisioner inside a running org: it publishes the mode, and a restricted org keeps
running (streaming off → polling)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest

from ilyd.actors.messages import GetSnapshot, OrgState, OrgStatus
from ilyd.actors.provisioner import RunCheck, RunProvision, provisioner_for
from ilyd.actors.supervisor import SupervisorActor
from ilyd.config import load_config
from ilyd.provision.unwritable import STEP as UNWRITABLE_STEP
from ilyd.store import Database
from ilyd.store.writes import WriteStateStore
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
        f'username = "{org.username}"\npassword_file = "{tmp_path}/password"\n')
    return load_config(path)


def _wait_for_mode(supervisor: pykka.ActorRef[Any]) -> OrgStatus:
    # The provisioner can publish its mode before the org has reported itself started.
    def published() -> OrgStatus | None:
        org: OrgStatus = supervisor.ask(GetSnapshot(), timeout=5).orgs[0]
        detail = dict(org.detail)
        settled = org.state is not OrgState.STARTING
        return org if settled and ("mode" in detail or "provision_error" in detail) else None

    return wait_until(published, what="the org started, its mode published")


def test_an_org_without_streaming_runs_in_polling_mode_and_keeps_running(
        tmp_path: Path, env: Env) -> None:
    env.admin("PATCH", "/settings", {"streaming_enabled": False})
    database = Database(tmp_path / "state" / "ilyd.db")
    supervisor = SupervisorActor.start(_config(tmp_path, env), database=database)
    org = _wait_for_mode(supervisor)
    assert org.state is OrgState.RUNNING
    detail = dict(org.detail)
    assert detail["mode"] == "polling"
    assert detail["fields"] == "40/40"
    ref = provisioner_for("acme")
    assert ref is not None
    check = ref.ask(RunCheck(), timeout=30)
    assert check["ok"] is True
    assert check["mode"] == "polling"
    again = ref.ask(RunProvision(dry_run=True), timeout=30)
    assert again["plan"] == []
    supervisor.stop()
    database.close()


def test_ctl_check_lists_the_fields_the_writer_found_unwritable(
        tmp_path: Path, env: Env) -> None:
    database = Database(tmp_path / "state" / "ilyd.db")
    WriteStateStore(database).mark_unwritable(
        "acme", "Lead", "Ily_Industry__c", "INVALID_FIELD_FOR_INSERT_UPDATE")
    supervisor = SupervisorActor.start(_config(tmp_path, env), database=database)
    _wait_for_mode(supervisor)
    ref = provisioner_for("acme")
    assert ref is not None
    check = ref.ask(RunCheck(), timeout=30)
    (line,) = [r for r in check["results"] if r["step"] == UNWRITABLE_STEP]
    assert line["status"] == "WARN"
    assert "Ily_Industry__c" in line["summary"]
    supervisor.stop()
    database.close()
