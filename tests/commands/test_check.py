"""`ilyd check` and `ilyd fields package` as an admin runs them."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import requests

from ilyd.cli import main
from ilyd.devorg import DevOrg

from .conftest import write_config


def test_check_exits_1_on_a_fresh_org_and_0_once_provisioned(
        tmp_path: Path, dev: DevOrg, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, dev, auth="password")
    assert main(["check", "acme", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  field Account.Ily_Domain__c" in out
    assert "fix: ilyd ctl provision acme" in out

    from ilyd.actors.org import OrgSecrets
    from ilyd.config import load_config
    from ilyd.provision.service import Provisioner
    from ilyd.salesforce.connect import make_org_rest_client

    org = load_config(config).orgs[0]
    rest = make_org_rest_client(org, OrgSecrets.read(org))
    Provisioner("acme", rest, objects=org.objects, api_version=org.api_version).provision()
    rest.close()

    assert main(["check", "acme", "--config", str(config), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is True
    assert result["mode"] == "streaming"
    assert result["counts"]["FAIL"] == 0


def test_check_shows_a_refreshed_sandbox(tmp_path: Path, dev: DevOrg,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from ilyd.provision.identity import OrgIdentityStore
    from ilyd.store import Database
    from ilyd.store.replay import ReplayStore

    config = write_config(tmp_path, dev, auth="password")
    database = Database(tmp_path / "state" / "ilyd.db")
    OrgIdentityStore(database).observe("acme", "00D000000000999AAA")
    ReplayStore(database).set("acme", "/topic/IlyAccountChanges", 42)
    main(["check", "acme", "--config", str(config)])
    out = capsys.readouterr().out
    assert "WARN  sandbox refresh" in out
    assert f"org id changed from 00D000000000999AAA to {dev.orgs[0].org_id}" in out
    # check only looks; the daemon's provisioner drops the replay ids.
    assert ReplayStore(database).all("acme")
    refresh = OrgIdentityStore(database).observe("acme", dev.orgs[0].org_id)
    assert not refresh.acknowledged
    assert ReplayStore(database).all("acme") == {}
    database.close()


def test_check_of_an_org_without_api_access_is_one_fail_line(
        tmp_path: Path, dev: DevOrg, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, dev, auth="password")
    requests.patch(f"{dev.admin}/orgs/{dev.orgs[0].name}/permissions",
                   json={"system": {"PermissionsApiEnabled": False}}, timeout=10)
    assert main(["check", "acme", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL  api access")
    assert "API_DISABLED_FOR_ORG" in out


def test_fields_package_writes_package_xml_and_the_object_files(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ily.zip"
    assert main(["fields", "package", "acme", "--out", str(out)]) == 0
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        package = archive.read("ily_fields/package.xml").decode()
    assert names == {"ily_fields/package.xml", "ily_fields/objects/Account.object",
                     "ily_fields/objects/Lead.object"}
    assert "<members>Lead.Ily_Match_Status__c</members>" in package
    assert "sf project deploy start --metadata-zip" in capsys.readouterr().out
