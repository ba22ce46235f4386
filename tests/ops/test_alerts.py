"""Prometheus alert rules: valid, unit-tested both ways, each with a runbook section."""

from __future__ import annotations

import re
import subprocess

import yaml

from .conftest import ALERT_TESTS, ALERTS, RUNBOOK, alert_rules, promtool


def _github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file."""
    anchors = set()
    for line in markdown.splitlines():
        heading = re.match(r"#{1,6}\s+(.*)", line)
        if heading:
            text = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def test_promtool_check_rules_accepts_the_file():
    result = subprocess.run([promtool(), "check", "rules", str(ALERTS)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass():
    result = subprocess.run([promtool(), "test", "rules", str(ALERT_TESTS)],
                            capture_output=True, text=True, timeout=120, check=False,
                            cwd=ALERT_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_issue_alerts_are_all_there():
    names = {rule["alert"] for rule in alert_rules()}
    assert names >= {
        "IlydDaemonDown", "IlydDaemonAbsent", "IlydOrgDown", "IlydNoEvents",
        "IlydApiBudgetExceeded", "IlydInboxGrowing", "IlydWritebackFailureRatioHigh",
        "IlydReplayFallback", "IlydNeedsReauth", "IlydSandboxRefreshed",
        "IlydConfigReloadFailed", "IlydResyncRecordsFailing", "IlydResyncStalled",
    }


def test_every_alert_has_severity_summary_description_and_runbook():
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert rule["annotations"]["summary"].strip(), name
        assert rule["annotations"]["description"].strip(), name
        assert rule["annotations"]["runbook"] == f"docs/runbook.md#{name.lower()}", name


def test_every_runbook_annotation_points_at_a_runbook_section():
    anchors = _github_anchors(RUNBOOK.read_text(encoding="utf-8"))
    for rule in alert_rules():
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        assert anchor in anchors, f"{rule['alert']}: docs/runbook.md has no section #{anchor}"


def test_every_alert_is_tested_firing_and_silent():
    tests = yaml.safe_load(ALERT_TESTS.read_text(encoding="utf-8"))["tests"]
    fired, silent = set(), set()
    for group in tests:
        for check in group.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - fired == set(), "alerts never made to fire"
    assert names - silent == set(), "alerts never checked silent"
