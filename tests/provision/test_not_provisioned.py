"""With auto_provision = false an org that is not provisioned says so, and what to run,
instead of looking like a stream in backoff on a channel that does not exist yet."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ilyd.actors.messages import GetSnapshot, OrgState, OrgStatus
from ilyd.actors.provisioner import RunProvision, provisioner_for
from ilyd.actors.supervisor import SupervisorActor
from ilyd.store import Database
from tests.helpers.waiting import wait_until

from .conftest import Env
from .test_actor import _config, _stop_all_actors  # noqa: F401 (the fixture stops the actors)


def test_an_org_not_provisioned_is_degraded_naming_the_provision_command_until_it_runs(
        tmp_path: Path, env: Env) -> None:
    database = Database(tmp_path / "state" / "ilyd.db")
    config = _config(tmp_path, env)
    config = replace(config, orgs=(replace(config.orgs[0], auto_provision=False),),
                     daemon=replace(config.daemon, degraded_after=0.0))
    supervisor = SupervisorActor.start(config, database=database)

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
