"""`resync --dry-run --report`: nothing is written to Salesforce, the CSV has one row per
value that would change (with the overwrite policy's decision) and a summary per field,
and a real resync run afterwards writes exactly what the report said."""

from __future__ import annotations

import csv
import threading
from pathlib import Path

import pytest

from ilyd.config.enrich import EnrichConfig, OverwritePolicy
from ilyd.enrich.fields import LAST_ENRICHED, fields_for
from ilyd.resync.compare import normalise
from ilyd.resync.engine import ResyncRequest, ResyncSettings
from ilyd.resync.progress import Phase
from ilyd.resync.report import COLUMNS, SUMMARY
from ilyd.salesforce.versions import DEFAULT_API_VERSION
from ilyd.store.history import HistoryStore
from tests.helpers.waiting import wait_until
from tests.resync.conftest import FAST, OrgEnv
from tests.resync.test_daemon import Daemon, daemon  # noqa: F401 - the daemon fixture

QUERY_JOBS = f"/services/data/v{DEFAULT_API_VERSION}/jobs/query"

NAME, INDUSTRY = "Ily_Company_Name__c", "Ily_Industry__c"
ENRICH = EnrichConfig(overwrite=((NAME, OverwritePolicy.IF_BLANK),))
ILY = [f.api_name for f in fields_for("Account") if f is not LAST_ENRICHED]
FIELDS = ", ".join(ILY)


def read_report(path: Path) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        rows = list(reader)
    return ([r for r in rows if r["Id"] != SUMMARY], [r for r in rows if r["Id"] == SUMMARY])


def run(env: OrgEnv, settings: ResyncSettings, report: Path | None = None) -> dict[str, object]:
    engine = env.resync(settings, enrich=ENRICH)
    engine.begin(ResyncRequest(("Account",), report=str(report) if report else None))
    progress = engine.run()
    assert progress.phase is Phase.DONE, progress.snapshot()
    return progress.snapshot()


@pytest.mark.parametrize("count", [60, 450], ids=["rest", "bulk"])
def test_the_dry_run_writes_nothing_and_a_real_resync_writes_what_it_reported(
        env: OrgEnv, tmp_path: Path, count: int) -> None:
    ids = env.add_sample_accounts(count)
    # Values already there, by the integration user: one is kept (if_blank), one
    # replaced (unless_edited: ilyd's own last change).
    for record in ids[:5]:
        env.rest.update("Account", record, {NAME: "Our Own Name", INDUSTRY: "Old Industry"})
    path = tmp_path / "report.csv"

    dry = run(env, FAST, path)
    assert dry["dry_run"] is True
    assert dry["written"] == 0
    assert sum(env.ily_writes(r) for r in ids[:8]) == 5  # only the updates above
    rows, summary = read_report(path)
    planned = {(r["Id"], r["field"]): r["proposed"] for r in rows if r["decision"] == "write"}
    kept = {(r["Id"], r["field"]): r for r in rows if r["decision"] != "write"}
    assert {k for k in kept} == {(r, NAME) for r in ids[:5]}
    assert all(r["decision"] == "if_blank" and r["current"] == "Our Own Name"
               and r["proposed"] for r in kept.values())
    assert {(r, INDUSTRY) for r in ids[:5]} <= planned.keys()
    assert {r["field"] for r in summary} >= {NAME, INDUSTRY, "Ily_Match_Status__c"}
    industry = next(r for r in summary if r["field"] == INDUSTRY)
    assert industry["decision"] == f"write={count}"
    assert {r["source"] for r in rows} == {"dataset"}

    before = {r["Id"]: r for r in env.all_records("Account", FIELDS)}
    run(env, FAST)
    after = {r["Id"]: r for r in env.all_records("Account", FIELDS)}
    written = {(rid, name) for rid in after for name in ILY
               if normalise(name, after[rid][name])
               != normalise(name, before[rid][name])}
    assert written == set(planned)
    for (rid, name), proposed in planned.items():
        assert normalise(name, after[rid][name]) == normalise(name, proposed or None)
    for rid, name in kept:
        assert after[rid][name] == "Our Own Name"
    # What the resync wrote is in the record's history (ilyd ctl history).
    entries = HistoryStore(env.db).for_record(env.info.name, ids[0], 0)
    assert [e.path for e in entries] == ["resync"]
    assert entries[0].entry["written"][INDUSTRY] == ["Old Industry",
                                                    planned[(ids[0], INDUSTRY)]]
    assert entries[0].entry["skipped"][NAME] == "if_blank"


def report_lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines()) if path.exists() else 0


def test_a_dry_run_stopped_midway_resumes_and_the_report_has_each_value_once(
        env: OrgEnv, tmp_path: Path) -> None:
    ids = env.add_sample_accounts(1200)
    # Slow result pages: the stop lands with a batch reported and more to read.
    env.admin.fault(kind="latency", path_prefix=QUERY_JOBS, method="GET", delay=0.4)
    path = tmp_path / "report.csv"
    engine = env.resync(FAST, enrich=ENRICH)
    engine.begin(ResyncRequest(("Account",), report=str(path)))
    worker = threading.Thread(target=engine.run)
    worker.start()
    wait_until(lambda: report_lines(path) > 1, timeout=60, what="a first batch reported")
    engine.stop()
    worker.join(60)
    env.admin.clear_faults()
    first, _ = read_report(path)
    assert 0 < len({r["Id"] for r in first}) < len(ids)

    again = env.resync(FAST, enrich=ENRICH)
    assert again.resumable()
    again.resume()
    assert again.run().phase is Phase.DONE
    rows, summary = read_report(path)
    keys = [(r["Id"], r["field"]) for r in rows]
    assert len(keys) == len(set(keys))
    assert {r["Id"] for r in rows} == set(ids)
    assert summary
    assert sum(env.ily_writes(r) for r in ids[:20]) == 0


def test_ilyd_ctl_resync_dry_run_reports_through_a_running_daemon_and_writes_nothing(
        env: OrgEnv, daemon: Daemon, tmp_path: Path) -> None:  # noqa: F811
    ids = env.add_sample_accounts(30)
    wait_until(lambda: all(r[INDUSTRY] for r in env.all_records("Account", INDUSTRY)),
               timeout=60, what="the real-time path enriched the accounts")
    stale = ids[:4]
    for record in stale:  # as ilyd itself: values a resync would correct
        env.rest.update("Account", record, {INDUSTRY: "Stale Industry"})
    writes = {r: env.ily_writes(r) for r in ids}
    report = tmp_path / "out" / "dry.csv"
    done = daemon.ctl("resync", env.info.name, "--dry-run", "--report", str(report),
                      "--wait", timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"dry run (nothing written): report {report}" in done.stdout
    rows, summary = read_report(report)
    assert {(r["Id"], r["field"], r["current"], r["decision"]) for r in rows} == {
        (r, INDUSTRY, "Stale Industry", "write") for r in stale}
    assert [r["decision"] for r in summary] == ["write=4"]
    assert {r: env.ily_writes(r) for r in ids} == writes
    refused = daemon.ctl("resync", env.info.name, "--report", str(report))
    assert refused.returncode == 2
    assert "--report goes with --dry-run" in refused.stderr
