"""`ilyd ctl layout` on a running daemon, and `auto_layout = true` in the config: the
daemon's provisioner adds the Ily section to the page layouts."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ilyd.devorg import DevOrg
from tests.helpers.devorg_process import devorg_fixture
from tests.helpers.orgs import password_org_toml
from tests.helpers.waiting import wait_until
from tests.pipeline.conftest import Daemon

ACCOUNT, LEAD = "Account-Account Layout", "Lead-Lead Layout"


dev = devorg_fixture()


def _config(tmp_path: Path, dev: DevOrg, extra: str = "") -> Path:
    path = tmp_path / "ilyd.toml"
    path.write_text(f'[daemon]\nstate_dir = "{tmp_path}/state"\nprocesses = 1\n'
                    f'control_socket = "{tmp_path}/control.sock"\n[metrics]\nlisten = ""\n'
                    + password_org_toml(tmp_path, dev, dev.orgs[0], extra))
    return path


def _ctl(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ilyd", "ctl", "--socket", str(config.parent / "control.sock"),
         "layout", *args], capture_output=True, text=True, timeout=150, check=False)


@contextmanager
def _running(daemon: Daemon) -> Iterator[Daemon]:
    daemon.start()
    try:
        wait_until(lambda: daemon.org().get("detail", {}).get("mode") == "streaming",
                   timeout=60, what="the org provisioned by the daemon")
        yield daemon
    finally:
        daemon.stop()


def test_ctl_layout_plans_adds_and_then_has_nothing_to_do(tmp_path: Path,
                                                          dev: DevOrg) -> None:
    config = _config(tmp_path, dev)
    org = dev.orgs[0].name
    with _running(Daemon(config)):
        plan = _ctl(config, org, "--plan", "--object", "Account")
        assert plan.returncode == 0, plan.stderr
        assert plan.stdout.startswith(f"{ACCOUNT}: would add 20 field(s) to new section "
                                      "'Ily Enrichment'")
        assert LEAD not in plan.stdout
        done = _ctl(config, org)
        assert done.returncode == 0, done.stderr
        assert [line.split(":")[0] for line in done.stdout.splitlines()] == [ACCOUNT, LEAD]
        assert ": added 20 field(s)" in done.stdout
        again = _ctl(config, org)
        assert again.stdout.splitlines()[-1] == (
            f"{org}: nothing to do, every page layout shows the Ily fields")
        unknown = _ctl(config, org, "--layout", "Account-Nope")
        assert unknown.returncode != 0
        assert "no layout named 'Account-Nope'" in unknown.stderr + unknown.stdout


def test_with_auto_layout_the_daemon_adds_the_section_when_it_provisions(
        tmp_path: Path, dev: DevOrg) -> None:
    config = _config(tmp_path, dev, "auto_layout = true\n")
    org = dev.orgs[0].name
    with _running(Daemon(config)):
        wait_until(lambda: _ctl(config, org, "--plan").stdout.endswith(
            "every page layout shows the Ily fields\n"), timeout=60,
            what="the layouts given the Ily section by provisioning")
