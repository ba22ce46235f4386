"""The fault campaign, short: every fault kind thrown once or more within 70 s while
people work in two orgs, then every record checked (tests/chaos/campaign.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.chaos.campaign import Campaign, Settings


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_under_every_fault_no_record_is_lost_stale_or_written_for_nothing(
        tmp_path: Path) -> None:
    seed = int(os.environ.get("ILYD_CHAOS_SEED", "20261207"))
    lines: list[str] = []
    report = Campaign(Settings(seed=seed), tmp_path, say=lines.append).run()
    assert report.records > 50, lines
    assert {f.kind for f in report.faults} >= {"devorg_restart", "daemon_sigkill",
                                               "daemon_sigstop", "worker_killed"}
    assert report.passed, (f"seed {seed}: {report.problems()}; figures {report.figures()};"
                           f" log {lines}")
