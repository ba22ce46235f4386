"""`ilyd demo --duration N --json`: the whole product on devorg, unattended."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_unattended_demo_enriches_every_record_it_created() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ilyd", "demo", "--duration", "8", "--json", "--rate", "4"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["created"] > 0
    assert summary["enriched"] == summary["created"]
    assert summary["match_status"].get("Matched", 0) > 0
    assert summary["latency_ms"]["p50"] is not None
    assert summary["metrics_url"].startswith("http://127.0.0.1:")


def test_the_live_view_names_an_ilyd_the_admin_s_shell_can_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ilyd.commands.demo import _render

    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # a shell where .venv/bin is not activated
    summary = {"mode": "streaming", "created": 0, "website_edits": 0, "phone_edits": 0,
               "enriched": 0, "match_status": {}, "writes_skipped_unchanged": 0,
               "api_calls": 0, "api_calls_per_record": None,
               "latency_ms": {"p50": None, "p99": None, "max": None},
               "metrics_url": "http://127.0.0.1:9464/metrics"}
    view = _render(summary, tmp_path / "ilyd.toml", [])
    control = next(line for line in view.splitlines() if "control:" in line)
    command = control.split("control:")[1].split(" ctl --config ")[0].split()
    ran = subprocess.run([*command, "--version"], capture_output=True, text=True,
                         timeout=60, check=False, env={**os.environ, "PATH": "/usr/bin:/bin"})
    assert ran.returncode == 0, (command, ran.stderr)


def test_make_demo_installs_the_runtime_only_and_make_test_the_test_extras() -> None:
    repo = Path(__file__).resolve().parents[2]
    if shutil.which("make") is None:
        pytest.skip("make is not installed")

    def recipe(target: str) -> str:
        # -n: print the commands without running them; -B: as on a fresh machine.
        return subprocess.run(["make", "-n", "-B", "-C", str(repo), target], capture_output=True,
                              text=True, timeout=60, check=True).stdout

    demo, test = recipe("demo"), recipe("test")
    assert "pip install --quiet -e ." in demo
    assert "[test]" not in demo
    assert "pip install --quiet -e '.[test]'" in test
