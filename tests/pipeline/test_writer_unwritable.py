"""A field Salesforce refuses at write time is left out and shown by `ilyd check` (one WARN
line naming it, with the fix); once Edit is granted back (`ilyd ctl provision` does it
through the Ily_Connector permission set) the writer writes it again and the line goes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ilyd.cli import main
from ilyd.pipeline.runtime import OrgPipeline
from ilyd.provision.service import Provisioner
from ilyd.salesforce.soql import soql
from ilyd.store.inbox import InboxEntry
from tests.pipeline.conftest import SalesforceUser
from tests.pipeline.test_writer import make_writer
from tests.pipeline.test_writer_truncation import write


def check(config_path: Path, org: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    main(["check", org, "--config", str(config_path), "--json"])
    return dict(json.loads(capsys.readouterr().out))


def refused_lines(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in report["results"] if r["step"] == "fields refused on write"]


def take_edit_away(pipeline: OrgPipeline, field: str) -> None:
    """What an admin does in Setup: Edit off for the field in every permission set."""
    rows = list(pipeline.rest.query(soql("SELECT Id FROM FieldPermissions WHERE Field = {}",
                                         field)))
    assert rows
    for row in rows:
        pipeline.rest.update("FieldPermissions", row["Id"], {"PermissionsEdit": False})


def test_a_refused_field_is_shown_by_check_and_written_again_once_granted(
        pipeline: OrgPipeline, user: SalesforceUser, config_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    org = pipeline.org
    assert refused_lines(check(config_path, org, capsys)) == []
    writer = make_writer(pipeline)
    first = user.create("Account", Name="One", Website="acme.example")
    write(pipeline, writer, [InboxEntry("Account", first, {"Website": "acme.example"})])
    take_edit_away(pipeline, "Account.Ily_Industry__c")
    second = user.create("Account", Name="Two", Website="globex.test")
    report = write(pipeline, writer, [InboxEntry("Account", second,
                                                 {"Website": "globex.test"})])
    assert report.written == 1  # the writer's describe was stale: refused, then the rest
    assert user.record(second)["Ily_Industry__c"] is None

    lines = refused_lines(check(config_path, org, capsys))
    assert len(lines) == 1
    [line] = lines
    assert line["status"] == "WARN"
    assert "Account.Ily_Industry__c (INVALID_FIELD_FOR_INSERT_UPDATE since " in line["summary"]
    assert "1 Ily field(s)" in line["summary"]
    assert "Ily_Connector permission set" in line["fix"]
    assert f"ilyd ctl provision {org}" in line["fix"]
    capsys.readouterr()
    main(["check", org, "--config", str(config_path)])
    human = capsys.readouterr().out
    assert [ln for ln in human.splitlines() if ln.startswith("WARN  fields refused on write")]

    # What `ilyd ctl provision ORG` does: the permission set grants Edit again.
    Provisioner(org, pipeline.rest, objects=pipeline.config.objects,
                api_version=pipeline.config.api_version).provision()
    again = make_writer(pipeline)  # a fresh describe (a restart, or the 10-minute refresh)
    third = user.create("Account", Name="Three", Website="globex.test")
    report = write(pipeline, again, [InboxEntry("Account", third,
                                                {"Website": "globex.test"})])
    assert report.written == 1
    assert user.record(third)["Ily_Industry__c"] == "Energy"
    assert pipeline.state.unwritable(org) == []
    assert refused_lines(check(config_path, org, capsys)) == []
