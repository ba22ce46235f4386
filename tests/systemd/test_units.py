"""The systemd unit verifies cleanly and scores OK in systemd-analyze security."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT_DIR = Path(__file__).parents[2] / "systemd"


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is required under CI=true (make system-deps)")
        pytest.skip("systemd-analyze not installed")
    return path


@pytest.fixture
def unit(tmp_path: Path) -> Path:
    """The unit with ExecStart/ExecReload pointing at an ilyd that exists here."""
    ilyd = Path(sys.executable).parent / "ilyd"
    text = (UNIT_DIR / "ilyd.service").read_text().replace("/usr/bin/ilyd", str(ilyd))
    path = tmp_path / "ilyd.service"
    path.write_text(text)
    return path


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([systemd_analyze(), *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_unit_verifies_without_any_warning(unit):
    done = analyze("verify", "--man=no", str(unit))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_unit_hardening_scores_ok(unit):
    done = analyze("security", "--offline=true", str(unit))
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    # "→ Overall exposure level for ilyd.service: 1.4 OK 🙂" (systemd 252)
    score = float(last.split(":")[1].split()[0])
    assert score <= 2.0, last
    assert " OK" in last


def test_unit_is_notify_with_watchdog_reload_and_directories():
    settings = {}
    for line in (UNIT_DIR / "ilyd.service").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key, value)
    assert settings["Type"] == "notify"
    assert settings["NotifyAccess"] == "main"
    assert settings["ExecReload"].endswith("ilyd ctl reload --wait")
    assert settings["Restart"] == "on-failure"
    assert "WatchdogSec" in settings
    for key in ("StateDirectory", "RuntimeDirectory", "ConfigurationDirectory"):
        assert settings[key] == "ilyd"
    assert (settings["User"], settings["Group"]) == ("ilyd", "ilyd")


def test_sysusers_snippet_creates_the_ilyd_user():
    lines = [ln for ln in (UNIT_DIR / "ilyd.sysusers").read_text().splitlines()
             if ln and not ln.startswith("#")]
    assert lines[0].split()[:2] == ["u", "ilyd"]
