"""Provisioning a fresh org end to end against devorg: check, provision, check, no-op."""

from __future__ import annotations

from ilyd.enrich.fields import fields_for
from ilyd.provision.checks import Mode, Status
from ilyd.provision.plan import ActionKind
from ilyd.provision.spec import PUSH_TOPICS
from ilyd.salesforce.soql import soql

from .conftest import Env


def _statuses(report) -> dict[str, Status]:
    return {r.step: r.status for r in report.results}


def test_fresh_org_fails_check_then_provision_fixes_it_and_a_second_run_is_a_no_op(
        env: Env) -> None:
    provisioner = env.provisioner()
    before = provisioner.check()
    assert not before.ok
    statuses = _statuses(before)
    assert statuses["field Account.Ily_Domain__c"] is Status.FAIL
    assert statuses["permission set Ily_Connector"] is Status.FAIL
    assert statuses["pushtopic IlyLeadChanges"] is Status.FAIL
    assert before.mode is Mode.PARTIAL
    fail = next(r for r in before.results if r.step == "field Lead.Ily_Industry__c")
    assert fail.fix == f"ilyd ctl provision {env.org.name}"
    assert fail.consequence

    first = provisioner.provision()
    kinds = [a.kind for a in first.done]
    assert kinds.count(ActionKind.CREATE_FIELD) == len(fields_for("Account")) + len(
        fields_for("Lead"))
    assert ActionKind.ASSIGN_PERMISSION_SET in kinds
    assert not first.failed
    assert first.mode is Mode.STREAMING
    assert first.fields_writable == first.fields_wanted

    after = provisioner.check()
    assert after.ok, [r.line() for r in after.results if r.status is Status.FAIL]
    assert after.mode is Mode.STREAMING

    second = provisioner.provision()
    assert second.plan.empty
    assert not second.done
    assert second.mode is Mode.STREAMING


def test_the_integration_user_can_write_every_ily_field_after_provisioning(env: Env) -> None:
    env.provisioner().provision()
    account = env.rest.create("Account", {"Name": "Acme", "Website": "https://acme.example"})
    values = {f.api_name: ("Matched" if f.picklist_values else
                           1 if f.type in ("Number", "Currency") else
                           "2024-05-01T12:00:00.000Z" if f.type == "DateTime" else "x")
              for f in fields_for("Account")}
    env.rest.update("Account", account, values)
    stored = env.rest.get("Account", account, list(values))
    assert stored["Ily_Match_Status__c"] == "Matched"
    assert stored["Ily_Domain__c"] == "x"


def test_push_topics_select_only_input_fields_and_notify_on_referenced_fields(env: Env) -> None:
    env.provisioner().provision()
    rows = {r["Name"]: r for r in env.rest.query(
        "SELECT Name, Query, NotifyForFields, NotifyForOperationCreate,"
        " NotifyForOperationUpdate, NotifyForOperationUndelete, NotifyForOperationDelete"
        " FROM PushTopic")}
    assert rows["IlyAccountChanges"]["Query"] == "SELECT Id, Name, Website FROM Account"
    assert rows["IlyLeadChanges"]["Query"] == (
        "SELECT Id, Email, Company, Website, IsConverted FROM Lead")
    for row in rows.values():
        assert row["NotifyForFields"] == "Referenced"
        assert row["NotifyForOperationCreate"]
        assert row["NotifyForOperationUpdate"]
        assert row["NotifyForOperationUndelete"]
        assert not row["NotifyForOperationDelete"]


def test_a_changed_push_topic_is_corrected(env: Env) -> None:
    provisioner = env.provisioner()
    provisioner.provision()
    topic = next(iter(env.rest.query(soql("SELECT Id FROM PushTopic WHERE Name = {}",
                                          PUSH_TOPICS["Lead"].name))))
    env.rest.update("PushTopic", topic["Id"], {"NotifyForFields": "All",
                                               "NotifyForOperationDelete": True})
    plan = provisioner.plan()
    assert [(a.kind, a.target) for a in plan.actions] == [
        (ActionKind.UPDATE_PUSH_TOPIC, "IlyLeadChanges")]
    provisioner.provision()
    assert provisioner.plan().empty


def test_plan_only_changes_nothing(env: Env) -> None:
    provisioner = env.provisioner()
    report = provisioner.provision(dry_run=True)
    assert not report.applied
    assert report.plan.actions
    assert not report.done
    assert provisioner.plan().actions == report.plan.actions


def test_grant_makes_the_fields_readable_for_a_profiles_users(env: Env) -> None:
    provisioner = env.provisioner()
    provisioner.provision()
    assert _statuses(provisioner.check())["profiles reading the Ily fields"] is Status.WARN
    report = provisioner.grant(["Standard User"])
    assert report.profiles["Standard User"] == 40
    assert not report.errors
    owned = next(iter(env.rest.query(
        "SELECT Id FROM PermissionSet WHERE IsOwnedByProfile = true"
        " AND Profile.Name = 'Standard User'")))["Id"]
    grants = list(env.rest.query(soql(
        "SELECT Field, PermissionsRead, PermissionsEdit FROM FieldPermissions"
        " WHERE ParentId = {}", owned)))
    assert len(grants) == 40
    assert all(g["PermissionsRead"] and not g["PermissionsEdit"] for g in grants)
    check = provisioner.check()
    line = next(r for r in check.results if r.step == "profiles reading the Ily fields")
    assert line.status is Status.PASS
    assert "Standard User" in line.summary
    again = provisioner.grant(["Standard User"])
    assert again.profiles["Standard User"] == 0
    assert again.unchanged["Standard User"] == 40


def test_grant_to_an_unknown_profile_names_the_profiles_that_exist(env: Env) -> None:
    import pytest

    from ilyd.errors import ProvisioningError

    with pytest.raises(ProvisioningError, match="Standard User"):
        env.provisioner().grant(["Marketing Wizard"])
