"""`ilyd demo --duration N --json`: the whole product on devorg, unattended."""

from __future__ import annotations

import json
import subprocess
import sys

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
