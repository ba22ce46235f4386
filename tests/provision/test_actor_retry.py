"""Startup provisioning inside a running org: a transient failure (5xx) is retried with
backoff while the org publishes the error and the next try; a non-transient one (API
access off) is published and left until `ilyd ctl provision`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest

from ilyd.actors import provisioner
from ilyd.actors.messages import GetSnapshot, OrgState, OrgStatus
from ilyd.actors.provisioner import RunProvision, provisioner_for
from ilyd.actors.supervisor import SupervisorActor
from ilyd.store import Database
from tests.helpers.waiting import wait_until

from .conftest import Env
from .test_actor import _config


@pytest.fixture(autouse=True)
def _stop_all_actors(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Short delays keep the test quick; the policy itself is tested in test_retry.py.
    monkeypatch.setattr(provisioner, "STARTUP_RETRY_INITIAL", 0.2)
    monkeypatch.setattr(provisioner, "STARTUP_RETRY_MAX", 0.5)
    yield
    pykka.ActorRegistry.stop_all(block=True, timeout=10)


def _wait(supervisor: pykka.ActorRef[Any], what: str,
          condition: Callable[[dict[str, Any]], bool]) -> OrgStatus:
    def seen() -> OrgStatus | None:
        org: OrgStatus = supervisor.ask(GetSnapshot(), timeout=5).orgs[0]
        return org if condition(dict(org.detail)) else None

    return wait_until(seen, timeout=30, what=what)


def test_a_5xx_at_startup_is_retried_with_the_next_try_published(
        tmp_path: Path, env: Env) -> None:
    fault = env.http.post(f"{env.dev.admin}/faults", json={
        "kind": "status", "status": 503, "path_prefix": "/services/data/",
        "org": env.org.name}, timeout=10)
    assert fault.status_code == 201, fault.text
    database = Database(tmp_path / "state" / "ilyd.db")
    supervisor = SupervisorActor.start(_config(tmp_path, env), database=database)
    failing = _wait(supervisor, "a second scheduled retry",
                    lambda d: (d.get("provision_attempts") or 0) >= 2)
    detail = dict(failing.detail)
    assert "503" in str(detail["provision_error"])
    assert str(detail["provision_retry_at"]).endswith("Z")
    assert "mode" not in detail
    assert failing.state is OrgState.RUNNING
    env.http.delete(f"{env.dev.admin}/faults", timeout=10)
    healed = _wait(supervisor, "the mode after the fault cleared", lambda d: "mode" in d)
    detail = dict(healed.detail)
    assert detail["mode"] == "streaming"
    assert "provision_error" not in detail
    assert "provision_retry_at" not in detail
    assert healed.restarts == 0, "the provisioner retried, not the supervisor"
    supervisor.stop()
    database.close()


def test_a_non_transient_failure_waits_for_ctl_provision(tmp_path: Path, env: Env) -> None:
    env.permissions(system={"PermissionsApiEnabled": False})
    database = Database(tmp_path / "state" / "ilyd.db")
    supervisor = SupervisorActor.start(_config(tmp_path, env), database=database)
    failed = _wait(supervisor, "the published failure", lambda d: "provision_error" in d)
    detail = dict(failed.detail)
    assert "API_DISABLED_FOR_ORG" in str(detail["provision_error"])
    assert "not retried" in str(detail["provision_error"])
    assert "ilyd ctl provision acme" in str(detail["provision_error"])
    assert "provision_retry_at" not in detail
    assert "provision_attempts" not in detail
    env.permissions(system={"PermissionsApiEnabled": True})
    ref = provisioner_for("acme")
    assert ref is not None
    report = ref.ask(RunProvision(), timeout=60)
    assert report["mode"] == "streaming"
    fixed = _wait(supervisor, "the mode after ctl provision", lambda d: "mode" in d)
    assert "provision_error" not in dict(fixed.detail)
    supervisor.stop()
    database.close()
