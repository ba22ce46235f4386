"""`ilyd check` and `ilyd fields package` as an admin runs them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from ilyd.cli import main
from ilyd.devorg import DevOrg

from .conftest import write_config

SNAPSHOTS = Path(__file__).parent / "snapshots"


def snapshot(name: str) -> str:
    """The expected text of `ilyd check` (the admin's interface: compared whole)."""
    return (SNAPSHOTS / name).read_text()


def check_text(config: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    """`ilyd check acme`'s exit status and output, the API usage figures (which move with
    every call) replaced by N."""
    capsys.readouterr()
    status = main(["check", "acme", "--config", str(config), *extra])
    out = re.sub(r"[\d,]+ / [\d,]+ used \(\d+% of the allowance\), ilyd budget [\d,]+",
                 "N / N used (N% of the allowance), ilyd budget N", capsys.readouterr().out)
    return status, out


def provision(config: Path) -> None:
    from ilyd.actors.context import OrgSecrets
    from ilyd.config import load_config
    from ilyd.provision.service import Provisioner
    from ilyd.salesforce.connect import make_org_rest_client

    org = load_config(config).orgs[0]
    rest = make_org_rest_client(org, OrgSecrets.read(org))
    Provisioner("acme", rest, objects=org.objects, api_version=org.api_version).provision()
    rest.close()


def restrict(dev: DevOrg, system: dict[str, bool], objects: dict[str, Any] | None = None
             ) -> None:
    response = requests.patch(f"{dev.admin}/orgs/{dev.orgs[0].name}/permissions",
                              json={"system": system, "objects": objects or {}}, timeout=10)
    response.raise_for_status()


SNAPSHOT_CASES: list[tuple[str, Callable[[Path, DevOrg], None]]] = [
    ("check_fresh.txt", lambda _config, _dev: None),
    ("check_provisioned.txt", lambda config, _dev: provision(config)),
    ("check_without_modify_all_data_and_streaming_api.txt", lambda _config, dev: restrict(
        dev, {"PermissionsModifyAllData": False, "PermissionsStreamingApiEnabled": False})),
]


@pytest.mark.parametrize(("expected", "prepare"), SNAPSHOT_CASES,
                         ids=["a fresh org: what ilyd does itself is TODO",
                              "a provisioned org: all PASS but the optional step",
                              "an org without Modify All Data and Streaming API: WARNs"])
def test_check_prints_one_line_per_step_and_exits_0_when_nothing_is_blocked(
        tmp_path: Path, dev: DevOrg, capsys: pytest.CaptureFixture[str], expected: str,
        prepare: Callable[[Path, DevOrg], None]) -> None:
    config = write_config(tmp_path, dev, auth="password")
    prepare(config, dev)
    status, out = check_text(config, capsys)
    assert out == snapshot(expected)
    assert status == 0


def test_a_provisioned_org_s_json_says_ok_in_streaming_mode(
        tmp_path: Path, dev: DevOrg, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, dev, auth="password")
    provision(config)
    assert main(["check", "acme", "--config", str(config), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is True
    assert result["mode"] == "streaming"
    assert result["counts"]["FAIL"] == 0


def test_verbose_lists_each_field_under_its_step_and_json_holds_every_item(
        tmp_path: Path, dev: DevOrg, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, dev, auth="password")
    _, out = check_text(config, capsys, "--verbose")
    lines = out.splitlines()
    fields = lines.index("TODO  Ily fields              0 of 40 present (Account 0/20, Lead 0/20)")
    assert lines[fields + 3] == ("      TODO  field Account.Ily_Domain__c               missing")
    assert sum(line.startswith("      TODO  field ") for line in lines) == 40
    assert main(["check", "acme", "--config", str(config), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    step = next(s for s in result["steps"] if s["step"] == "Ily fields")
    assert len(step["items"]) == 40
    assert {i["status"] for i in step["items"]} == {"TODO"}
    assert len(result["results"]) == sum(len(s["items"]) for s in result["steps"])


def test_a_blocked_step_is_a_fail_with_its_fix_and_exit_1(
        tmp_path: Path, dev: DevOrg, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, dev, auth="password")
    restrict(dev, {"PermissionsModifyAllData": False}, {"Lead": {"PermissionsEdit": False}})
    status, out = check_text(config, capsys)
    assert status == 1
    lines = out.splitlines()
    at = lines.index("FAIL  object permissions      Lead: missing Edit")
    assert lines[at + 1].strip() == "consequence: ilyd cannot read or enrich Lead records"
    assert lines[at + 2].strip() == ("fix: Setup > Users > Profiles > the integration user's"
                                     " profile > Object Settings > Lead: check Edit")
    assert "you must fix: object permissions, Ily fields (FAIL lines)" in out


def test_with_auto_provision_off_missing_fields_are_blocked_until_provisioned(
        tmp_path: Path, dev: DevOrg, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, dev, auth="password")
    config.write_text(config.read_text() + "auto_provision = false\n")
    status, out = check_text(config, capsys)
    assert status == 1
    assert "FAIL  Ily fields              0 of 40 present (Account 0/20, Lead 0/20)" in out
    assert "fix: ilyd ctl provision acme" in out
    assert "TODO" not in out


def test_past_the_api_limit_check_blames_the_limit_not_the_connected_app(
        tmp_path: Path, dev: DevOrg, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, dev, auth="password")
    requests.patch(f"{dev.admin}/orgs/{dev.orgs[0].name}/calls", json={"used": 15000},
                   timeout=10).raise_for_status()
    status, out = check_text(config, capsys)
    assert status == 1
    first = out.splitlines()[0]
    assert first.startswith("FAIL  connect                 the org is past its API limit")
    assert "REQUEST_LIMIT_EXCEEDED" in first
    assert "ilyd connect" not in out
    assert "connected app:" in out  # "nothing to fix in ilyd or the connected app"
    assert "Setup > System Overview > API Usage" in out


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
    assert out.startswith("FAIL  connect")
    assert "API_DISABLED_FOR_ORG" in out


def test_the_complete_sync_step_passes_once_a_resync_finished_and_says_so_while_it_runs(
        tmp_path: Path, dev: DevOrg, capsys: pytest.CaptureFixture[str]) -> None:
    from ilyd.resync.checkpoint import ResyncStore, RunState
    from ilyd.store import Database

    config = write_config(tmp_path, dev, auth="password")
    database = Database(tmp_path / "state" / "ilyd.db")
    runs = ResyncStore(database)
    runs.begin("acme", "run-1", ("Account", "Lead"), None)
    runs.add_counts("acme", {"read": 1200, "written": 1180})
    _, out = check_text(config, capsys)
    assert re.search(r"^TODO  complete sync           running since \S+ \S+ UTC: read 1,200,"
                     r" written 1,180$", out, re.MULTILINE), out
    assert ("fix: none needed: ilyd finishes it, across restarts; ilyd ctl status shows how far"
            " it is (ilyd ctl resync acme --wait to watch)") in out
    runs.finish("acme", RunState.DONE)
    _, out = check_text(config, capsys)
    assert re.search(r"^PASS  complete sync           done \S+ \S+ UTC: read 1,200,"
                     r" written 1,180$", out, re.MULTILINE), out
    database.close()


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


def ctl_check(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ilyd", "ctl", "--socket", str(config.parent / "control.sock"),
         "check", "acme", *extra], capture_output=True, text=True, timeout=150, check=False)


def test_ctl_check_on_the_running_daemon_shows_the_same_steps_and_exit_status_as_check(
        tmp_path: Path, dev: DevOrg, capsys: pytest.CaptureFixture[str]) -> None:
    from ilyd.control.client import ControlClient
    from ilyd.errors import IlydError
    from tests.helpers.waiting import wait_until
    from tests.pipeline.conftest import Daemon

    config = write_config(tmp_path, dev, auth="password")
    daemon = Daemon(config)
    daemon.start()
    try:
        def provisioned() -> bool:
            try:
                orgs = ControlClient(daemon.socket, timeout=10).call("orgs")
            except (OSError, IlydError):  # not listening yet, or still starting
                return False
            return any(o["detail"].get("mode") == "streaming" for o in orgs)

        wait_until(provisioned, timeout=60, what="the org provisioned by the daemon")
        done = ctl_check(config)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1].startswith(
            "acme: works now: 13 of 15 steps, mode streaming; you must fix: nothing")

        restrict(dev, {"PermissionsModifyAllData": False}, {"Lead": {"PermissionsEdit": False}})
        done = ctl_check(config)
        status, out = check_text(config, capsys)
        assert (done.returncode, status) == (1, 1)
        steps = [line[:28] for line in done.stdout.splitlines() if not line.startswith(" ")]
        assert steps == [line[:28] for line in out.splitlines() if not line.startswith(" ")]
        assert "FAIL  object permissions      Lead: missing Edit" in done.stdout
        verbose = ctl_check(config, "--verbose")
        assert "      FAIL  object Lead" in verbose.stdout
    finally:
        daemon.stop()


def test_a_refused_client_secret_sends_the_admin_to_the_secret_not_to_ilyd_connect(
        tmp_path: Path, dev: DevOrg, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, dev, auth="password")
    (tmp_path / "client_secret").write_text("not-the-consumer-secret")
    status, out = check_text(config, capsys)
    assert status == 1
    assert out.startswith("FAIL  connect")
    assert "invalid_client" in out
    fix = next(line for line in out.splitlines() if line.strip().startswith("fix:"))
    assert "client_secret_file" in fix
    assert "ilyd ctl reload" in fix
    assert "ilyd connect" not in fix
