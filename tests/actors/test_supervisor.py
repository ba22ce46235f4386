"""The supervisor: restart policy, pause/resume, restart, config changes, org detail."""

from __future__ import annotations

from pathlib import Path

import pykka
import pytest

from ilyd import metrics
from ilyd.actors.messages import (
    ApplyConfig,
    GetCounts,
    OrgReport,
    OrgState,
    PauseOrg,
    Ping,
    RestartOrg,
    ResumeOrg,
)
from ilyd.actors.org import OrgActor
from ilyd.actors.restart import OrgSlot, RestartPolicy, on_failure
from ilyd.actors.supervisor import LAUNCH_SLICE, SupervisorActor
from ilyd.config import OrgName
from ilyd.errors import ControlError
from ilyd.store import Database

from .conftest import (
    ASK_TIMEOUT,
    FAST_RESTART,
    UP,
    snapshot,
    start_supervisor,
    states,
    wait_for_states,
)

RUNNING, BACKOFF, FATAL = OrgState.RUNNING, OrgState.BACKOFF, OrgState.FATAL


def test_failing_org_goes_backoff_then_fatal_while_another_keeps_running(make_config, tmp_path):
    config = make_config("good", "broken")
    # The secret disappears after the config was validated: the org's start reads it.
    (tmp_path / "broken.secret").unlink()
    supervisor = start_supervisor(config, tmp_path)
    wait_for_states(supervisor, {"good": UP, "broken": FATAL})
    (good, broken) = snapshot(supervisor).orgs
    assert broken.restarts == FAST_RESTART.start_retries
    assert "broken.secret does not exist" in (broken.last_error or "")
    assert good.restarts == 0
    # Degraded (Salesforce unreachable) reads 0 too: the org is up but not enriching.
    assert metrics.REGISTRY.get_sample_value("ilyd_org_up", {"org": "good"}) == (
        1 if good.state is RUNNING else 0)
    assert metrics.REGISTRY.get_sample_value("ilyd_org_up", {"org": "broken"}) == 0
    assert metrics.REGISTRY.get_sample_value("ilyd_org_restarts_total", {"org": "broken"}) >= 2


def test_backoff_is_visible_with_its_next_start(make_config, tmp_path):
    config = make_config("broken")
    (tmp_path / "broken.secret").unlink()
    slow = RestartPolicy(start_secs=30, start_retries=3, backoff_initial=30, backoff_max=60)
    supervisor = start_supervisor(config, tmp_path, slow)
    wait_for_states(supervisor, {"broken": BACKOFF})
    (org,) = snapshot(supervisor).orgs
    assert org.retry_at is not None
    assert org.retry_at > org.since


def test_fatal_org_comes_back_on_restart_once_fixed(make_config, tmp_path):
    config = make_config("broken")
    secret = tmp_path / "broken.secret"
    secret.rename(tmp_path / "kept")
    supervisor = start_supervisor(config, tmp_path)
    wait_for_states(supervisor, {"broken": FATAL})
    (tmp_path / "kept").rename(secret)
    supervisor.ask(RestartOrg("broken"), timeout=ASK_TIMEOUT)
    wait_for_states(supervisor, {"broken": UP})


def test_pause_survives_a_supervisor_restart(make_config, tmp_path):
    config = make_config("a", "b")
    database = Database(tmp_path / "state.db")
    supervisor = SupervisorActor.start(config, policy=FAST_RESTART, database=database)
    wait_for_states(supervisor, {"a": UP, "b": UP})
    supervisor.ask(PauseOrg("a"), timeout=ASK_TIMEOUT)
    assert states(supervisor)["a"] is OrgState.PAUSED
    supervisor.stop(block=True, timeout=10)

    again = SupervisorActor.start(config, policy=FAST_RESTART, database=database)
    wait_for_states(again, {"a": OrgState.PAUSED, "b": UP})
    again.ask(ResumeOrg("a"), timeout=ASK_TIMEOUT)
    wait_for_states(again, {"a": UP})


def test_unknown_org_is_a_control_error(make_config, tmp_path):
    supervisor = start_supervisor(make_config("a"), tmp_path)
    with pytest.raises(ControlError) as info:
        supervisor.ask(RestartOrg("nope"), timeout=ASK_TIMEOUT)
    assert info.value.code == "unknown_org"


def test_apply_config_starts_added_stops_removed_and_restarts_only_changed(make_config, tmp_path):
    supervisor = start_supervisor(make_config("keep", "change", "drop"), tmp_path)
    wait_for_states(supervisor, {"keep": UP, "change": UP, "drop": UP})
    new = make_config("keep", "change", "add", extra="")
    changed = new.orgs[1]
    assert changed.name == "change"
    from dataclasses import replace

    new = replace(new, orgs=(new.orgs[0], replace(changed, workers=9), new.orgs[2]))
    result = supervisor.ask(ApplyConfig(new, 2), timeout=ASK_TIMEOUT)
    assert result.generation == 2
    current = wait_for_states(supervisor, {"keep": UP, "change": UP, "add": UP})
    assert set(current) == {"keep", "change", "add"}
    restarts = {o.name: o.restarts for o in snapshot(supervisor).orgs}
    assert restarts == {"keep": 0, "change": 1, "add": 0}
    assert metrics.REGISTRY.get_sample_value("ilyd_org_up", {"org": "drop"}) is None


def test_org_with_config_error_and_disabled_org_are_shown_not_started(make_config, tmp_path):
    config = make_config("ok", extra="")
    text = Path(config.path).read_text()
    text += '[[org]]\nname = "bad"\nclient_id = 3\n[[org]]\nname = "off"\nclient_id = "x"\n'
    text += "enabled = false\n"
    Path(config.path).write_text(text)
    from ilyd.config import load_config

    supervisor = start_supervisor(load_config(config.path), tmp_path)
    current = wait_for_states(supervisor, {"ok": UP})
    assert current["bad"] is OrgState.CONFIG_ERROR
    assert current["off"] is OrgState.STOPPED
    bad = next(o for o in snapshot(supervisor).orgs if o.name == "bad")
    assert bad.last_error == "org[1].client_id: must be a string (got an integer)"
    # The STATUS= line's counts, asked without a snapshot, agree with the snapshot's.
    counts = supervisor.ask(GetCounts(), timeout=ASK_TIMEOUT)
    assert counts == snapshot(supervisor).counts()
    assert counts[OrgState.CONFIG_ERROR] == counts[OrgState.STOPPED] == 1


def test_org_detail_published_by_children_is_merged_into_status(make_config, tmp_path):
    # No reconciliation sweep: its poller would publish its own detail at start.
    config = make_config("a", extra="[defaults]\nreconcile_interval = 0\n")
    supervisor = start_supervisor(config, tmp_path)
    wait_for_states(supervisor, {"a": RUNNING})
    supervisor.tell(OrgReport.of("a", 1, mode="polling", connection="reconnecting",
                                 reason="403 Unknown client"))
    supervisor.tell(OrgReport.of("a", 1, reason=None, connection="connected"))
    supervisor.tell(OrgReport.of("a", 0, mode="stale-incarnation"))
    assert supervisor.ask(Ping(), timeout=ASK_TIMEOUT) is True
    (org,) = snapshot(supervisor).orgs
    # The org's own children publish their detail too (the writer's window, …).
    published = {k: v for k, v in dict(org.detail).items()
                 if k in {"mode", "connection", "reason"}}
    assert published == {"mode": "polling", "connection": "connected"}


def test_restart_policy_backs_off_exponentially_with_equal_jitter(tmp_path):
    policy = RestartPolicy(backoff_initial=1, backoff_max=8)
    assert [policy.delay(n, 0.999999) for n in (1, 2, 3, 4, 5)] == pytest.approx(
        [1, 2, 4, 8, 8], rel=1e-5)
    assert policy.delay(1, 0.0) == 0.5
    assert policy.delay(4, 0.0) == 4


def test_an_org_failing_on_its_state_disk_backs_off_for_as_long_as_it_lasts_never_fatal():
    policy = RestartPolicy(start_secs=30, start_retries=2, backoff_initial=1, backoff_max=8)
    disk, other = OrgSlot(name=OrgName("disk"), config=None), OrgSlot(
        name=OrgName("other"), config=None)
    disk_delays = [on_failure(disk, policy, now=float(n), rand=0.5, never_fatal=True)
                   for n in range(10)]
    other_delays = [on_failure(other, policy, now=float(n), rand=0.5) for n in range(4)]
    assert None not in disk_delays
    assert disk_delays[-1] == policy.delay(policy.start_retries, 0.5)
    assert other_delays[-1] is None


def test_an_org_status_is_built_again_only_when_something_it_shows_has_changed():
    slot = OrgSlot(name=OrgName("acme"), config=None, state=RUNNING, since=100.0)
    slot.merge_detail((("connection", "connected"), ("source", "pushtopic")))
    first = slot.status()
    # Asked every second for every org (the front's liveness check): the same copy.
    assert slot.status() is first
    slot.merge_detail((("connection", "reconnecting"), ("source", None)))
    assert slot.status().detail == (("connection", "reconnecting"),)
    slot.clear_detail()
    assert slot.status().detail == ()
    slot.state, slot.since, slot.retry_at = BACKOFF, 101.0, 200.0
    assert (slot.status().state, slot.status().since, slot.status().retry_at) == (
        BACKOFF, 101.0, 200.0)
    slot.last_error, slot.restarts = "token refused", 1
    assert (slot.status().last_error, slot.status().restarts) == ("token refused", 1)
    slot.state = RUNNING  # a retry time shows only while backing off
    assert slot.status().retry_at is None


def test_a_supervisor_starting_many_orgs_answers_a_ping_before_it_has_launched_them_all(
        make_config, tmp_path):
    names = [f"org{i}" for i in range(3 * LAUNCH_SLICE)]
    supervisor = start_supervisor(make_config(*names), tmp_path)
    assert supervisor.ask(Ping(), timeout=ASK_TIMEOUT) is True
    # Launched in slices, one a turn of its mailbox: the ping was answered between them.
    assert len(pykka.ActorRegistry.get_by_class(OrgActor)) < len(names)
    wait_for_states(supervisor, {name: UP | {FATAL, BACKOFF} for name in names}, timeout=60)
