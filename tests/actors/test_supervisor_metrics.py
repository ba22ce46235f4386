"""The supervisor's per-org series: state, pre-created children, API budget, needs_reauth."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ilyd import metrics
from ilyd.actors.messages import (
    ApplyConfig,
    OrgReport,
    OrgState,
    PauseOrg,
    Ping,
    RestartOrg,
    ResumeOrg,
)
from ilyd.actors.supervisor import SupervisorActor
from ilyd.config import load_config
from ilyd.store import Database

from .conftest import ASK_TIMEOUT, FAST_RESTART, UP, start_supervisor, wait_for_states

PAUSED = OrgState.PAUSED
# The one state child of an org that is up (see UP).
UP_SERIES = ({"running": 1.0}, {"degraded": 1.0})


def org_states(org: str) -> dict[str, float]:
    """Every ilyd_org_state child of `org`: {state: value}."""
    return {
        sample.labels["state"]: sample.value
        for family in metrics.ORG_STATE.collect()
        for sample in family.samples
        if sample.labels["org"] == org
    }


def test_set_org_state_keeps_one_child_per_org_and_leaves_other_orgs_alone():
    metrics.set_org_state("m-one", "running")
    metrics.set_org_state("m-two", "backoff")
    metrics.set_org_state("m-one", "paused")
    assert org_states("m-one") == {"paused": 1.0}
    assert org_states("m-two") == {"backoff": 1.0}
    metrics.set_org_state("m-one", "paused")  # the same state again changes nothing
    assert org_states("m-one") == {"paused": 1.0}
    metrics.forget_org("m-one")
    metrics.forget_org("m-two")
    assert org_states("m-one") == {}


def test_each_org_exports_its_current_state_paused_stopped_and_config_error_included(
    make_config, tmp_path
):
    config = make_config("st-run", "st-pause")
    text = Path(config.path).read_text()
    text += '[[org]]\nname = "st-bad"\nclient_id = 3\n'
    text += '[[org]]\nname = "st-off"\nclient_id = "x"\nenabled = false\n'
    Path(config.path).write_text(text)
    supervisor = start_supervisor(load_config(config.path), tmp_path)
    wait_for_states(supervisor, {"st-run": UP, "st-pause": UP})
    supervisor.ask(PauseOrg("st-pause"), timeout=ASK_TIMEOUT)
    assert org_states("st-run") in UP_SERIES
    assert org_states("st-pause") == {"paused": 1.0}
    assert org_states("st-bad") == {"config_error": 1.0}
    assert org_states("st-off") == {"stopped": 1.0}

    supervisor.ask(ResumeOrg("st-pause"), timeout=ASK_TIMEOUT)
    wait_for_states(supervisor, {"st-pause": UP})
    assert org_states("st-pause") in UP_SERIES


def test_an_org_removed_from_the_config_leaves_no_state_series(make_config, tmp_path):
    supervisor = start_supervisor(make_config("st-keep", "st-drop"), tmp_path)
    wait_for_states(supervisor, {"st-keep": UP, "st-drop": UP})
    supervisor.ask(ApplyConfig(make_config("st-keep"), 2), timeout=ASK_TIMEOUT)
    assert org_states("st-drop") == {}
    assert org_states("st-keep") in UP_SERIES


def budget(org: str) -> float | None:
    return metrics.REGISTRY.get_sample_value("ilyd_sf_api_budget_ratio", {"org": org})


def test_each_org_exports_its_own_api_budget_and_a_reload_updates_it(make_config, tmp_path):
    config = make_config("bu-low", "bu-high")
    low, high = config.orgs
    config = replace(config, orgs=(replace(low, api_budget_ratio=0.3),
                                   replace(high, api_budget_ratio=0.8)))
    supervisor = start_supervisor(config, tmp_path)
    wait_for_states(supervisor, {"bu-low": UP, "bu-high": UP})
    assert budget("bu-low") == 0.3
    assert budget("bu-high") == 0.8

    raised = replace(config, orgs=(replace(config.orgs[0], api_budget_ratio=0.6), config.orgs[1]))
    supervisor.ask(ApplyConfig(raised, 2), timeout=ASK_TIMEOUT)
    wait_for_states(supervisor, {"bu-low": UP})
    assert budget("bu-low") == 0.6
    assert budget("bu-high") == 0.8


def value(name: str, org: str) -> float | None:
    return metrics.REGISTRY.get_sample_value(name, {"org": org})


def test_a_configured_org_exports_its_counters_at_zero_before_any_event(make_config, tmp_path):
    config = make_config("pre-run", "pre-pause")
    supervisor = start_supervisor(config, tmp_path)
    supervisor.ask(PauseOrg("pre-pause"), timeout=ASK_TIMEOUT)
    wait_for_states(supervisor, {"pre-run": UP, "pre-pause": PAUSED})
    for org in ("pre-run", "pre-pause"):
        assert value("ilyd_replay_fallbacks_total", org) == 0
        assert value("ilyd_writeback_failures_total", org) == 0
        assert value("ilyd_org_needs_reauth", org) == 0
        assert metrics.REGISTRY.get_sample_value(
            "ilyd_resync_records_total", {"org": org, "stage": "failed"}) == 0
    supervisor.ask(ApplyConfig(make_config("pre-run"), 2), timeout=ASK_TIMEOUT)
    assert value("ilyd_replay_fallbacks_total", "pre-pause") is None


def test_needs_reauth_follows_the_org_detail_and_clears_when_the_org_starts_again(
    make_config, tmp_path
):
    supervisor = start_supervisor(make_config("ra"), tmp_path)
    wait_for_states(supervisor, {"ra": UP})
    assert value("ilyd_org_needs_reauth", "ra") == 0
    supervisor.tell(OrgReport.of("ra", 1, needs_reauth=True, reason="invalid_grant"))
    supervisor.tell(OrgReport.of("ra", 1, mode="polling"))  # other detail leaves it set
    assert supervisor.ask(Ping(), timeout=ASK_TIMEOUT) is True
    assert value("ilyd_org_needs_reauth", "ra") == 1
    supervisor.tell(OrgReport.of("ra", 0, needs_reauth=None))  # a replaced instance: ignored
    assert supervisor.ask(Ping(), timeout=ASK_TIMEOUT) is True
    assert value("ilyd_org_needs_reauth", "ra") == 1

    supervisor.ask(RestartOrg("ra"), timeout=ASK_TIMEOUT)  # after `ilyd connect`
    wait_for_states(supervisor, {"ra": UP})
    assert value("ilyd_org_needs_reauth", "ra") == 0


def test_a_new_supervisor_in_the_same_process_leaves_no_stale_state_child(make_config, tmp_path):
    config = make_config("rs-a")
    database = Database(tmp_path / "state.db")
    first = SupervisorActor.start(config, policy=FAST_RESTART, database=database)
    wait_for_states(first, {"rs-a": UP})
    first.stop(block=True, timeout=10)  # the daemon's stop does not touch the series

    again = SupervisorActor.start(config, policy=FAST_RESTART, database=database)
    again.ask(PauseOrg("rs-a"), timeout=ASK_TIMEOUT)
    assert org_states("rs-a") == {"paused": 1.0}
