"""Without Read or Edit on Account / Lead, the Ily field lines blame the object
permission (with its fix), not field-level security."""

from __future__ import annotations

import pytest

from ilyd.provision.checks import Status

from .conftest import Env

NO_MAD = {"PermissionsModifyAllData": False, "PermissionsViewAllData": False}


@pytest.mark.parametrize(("sobject", "missing"), [("Lead", "Edit"), ("Account", "Read")])
def test_fields_of_an_object_without_read_or_edit_blame_the_object_permission(
        env: Env, sobject: str, missing: str) -> None:
    env.provisioner().provision()  # fields exist and the permission set grants them
    env.permissions(system=NO_MAD, objects={sobject: {f"Permissions{missing}": False}})
    results = {r.step: r for r in env.provisioner().check().results}
    line = results[f"field {sobject}.Ily_Domain__c"]
    assert line.status is Status.FAIL, line
    # Describe reports the effective access: an object without Read is not editable
    # either (Salesforce's Edit requires Read), so the line may name both.
    assert f"lacks {missing}" in line.summary
    assert f"on {sobject} (object permission)" in line.summary
    assert "field-level security" not in line.summary
    assert f"Object Settings > {sobject}: check {missing}" in (line.fix or "")
    other = "Account" if sobject == "Lead" else "Lead"
    assert results[f"field {other}.Ily_Domain__c"].status is Status.PASS


def test_a_missing_field_on_an_object_without_edit_names_both_fixes(env: Env) -> None:
    env.permissions(system=NO_MAD, objects={"Lead": {"PermissionsEdit": False}})
    line = next(r for r in env.provisioner().check().results
                if r.step == "field Lead.Ily_Domain__c")
    assert line.status is Status.FAIL
    assert "lacks Edit on Lead (object permission)" in line.summary
    assert "also missing" in line.summary
    assert "Object Settings > Lead: check Edit; then ilyd ctl provision" in (line.fix or "")
