"""The calls of a cold provisioning: the Ily fields created in Tooling composite calls (ten
a call, not one call a field; a refused call fails its own fields only), the snapshot's
independent queries in one Composite call, and the read after the run's changes leaving
out what they cannot change."""

from __future__ import annotations

import math

from ilyd.enrich.fields import fields_for
from ilyd.provision.plan import ActionKind
from ilyd.salesforce.tooling_composite import CREATES_PER_CALL

from .conftest import Env


def _calls(env: Env) -> dict[str, int]:
    return dict(env.admin("GET", "/calls")["by_endpoint"])


def test_the_fields_are_created_in_tooling_composite_calls_of_ten(env: Env) -> None:
    wanted = len(fields_for("Account")) + len(fields_for("Lead"))
    report = env.provisioner().provision()
    assert [a.kind for a in report.done].count(ActionKind.CREATE_FIELD) == wanted
    calls = _calls(env)
    assert calls.get("POST tooling.composite") == math.ceil(wanted / CREATES_PER_CALL)
    assert "POST tooling.sobject" not in calls


def test_a_refused_call_fails_its_fields_and_the_next_call_still_creates_its_own(
        env: Env) -> None:
    wanted = len(fields_for("Account")) + len(fields_for("Lead"))
    fault = env.http.post(f"{env.dev.admin}/faults", json={
        "kind": "status",
        "path_prefix": f"/services/data/v{env.rest.api_version}/tooling/composite",
        "status": 500, "error_code": "UNKNOWN_EXCEPTION", "message": "boom", "count": 1},
        timeout=10)
    assert fault.status_code < 300, fault.text
    report = env.provisioner().provision()
    failed = [a for a, _ in report.failed if a.kind is ActionKind.CREATE_FIELD]
    created = [a for a in report.done if a.kind is ActionKind.CREATE_FIELD]
    assert len(failed) == CREATES_PER_CALL
    assert all("boom" in error for a, error in report.failed if a in failed)
    assert len(created) == wanted - CREATES_PER_CALL
    # The next run creates what the refused call did not.
    again = env.provisioner().provision()
    assert [a.kind for a in again.done].count(ActionKind.CREATE_FIELD) == CREATES_PER_CALL


def test_each_snapshot_reads_its_independent_queries_in_one_composite_call(
        env: Env) -> None:
    env.provisioner().check()
    calls = _calls(env)
    assert calls["POST composite"] == 1
    assert "GET limits" in calls


def test_the_read_after_the_changes_leaves_out_what_they_cannot_change(
        env: Env) -> None:
    provisioner = env.provisioner()
    report = provisioner.provision()
    assert report.done
    calls = _calls(env)
    assert calls["POST composite"] == 2  # one per snapshot, before and after the changes
    assert calls["GET limits"] == 1
    assert calls["GET describeGlobal"] == 1


def test_both_push_topics_are_created_in_one_collections_call(env: Env) -> None:
    report = env.provisioner().provision()
    assert [a.kind for a in report.done].count(ActionKind.CREATE_PUSH_TOPIC) == 2
    calls = _calls(env)
    assert calls["POST composite.sobjects"] == 2  # the field grants, the topics
    topics = env.rest.query("SELECT Name, IsActive FROM PushTopic")
    assert {t["Name"] for t in topics if t["IsActive"]} == {"IlyAccountChanges",
                                                            "IlyLeadChanges"}


def test_topics_refused_in_one_call_are_created_one_by_one(env: Env) -> None:
    fault = env.http.post(f"{env.dev.admin}/faults", json={
        "kind": "status", "method": "POST",
        "path_prefix": f"/services/data/v{env.rest.api_version}/composite/sobjects",
        "status": 400, "error_code": "INVALID_TYPE", "message": "not here", "count": 2},
        timeout=10)
    assert fault.status_code < 300, fault.text
    report = env.provisioner().provision()
    assert [a.kind for a in report.done].count(ActionKind.CREATE_PUSH_TOPIC) == 2
