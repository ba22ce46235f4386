"""The writer against devorg: values land, per-record errors are handled, no-op writes
are skipped, and inbox rows go only once Salesforce confirmed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from ilyd.pipeline.enricher import Enricher
from ilyd.pipeline.outcomes import DROP_REASONS, Action, action_for
from ilyd.pipeline.runtime import OrgPipeline
from ilyd.pipeline.work import WorkItem
from ilyd.pipeline.writer import Writer
from ilyd.salesforce.rest import RecordError
from ilyd.store import Database
from ilyd.store.inbox import InboxEntry
from ilyd.store.record_hashes import RecordHashStore
from tests.pipeline.conftest import SalesforceUser


def make_writer(pipeline: OrgPipeline) -> Writer:
    return Writer(pipeline.org, pipeline.rest, pipeline.inbox, pipeline.state, pipeline.hashes,
                  enrich=pipeline.config.enrich, budget=pipeline.budget)


def run_once(pipeline: OrgPipeline, entries: Sequence[InboxEntry],
             writer: Writer | None = None) -> tuple[Writer, object]:
    """Put entries, enrich them all, flush the writer once (`writer`: one already used,
    whose view of the org's fields may be out of date; default a new one)."""
    pipeline.inbox.put(pipeline.org, entries, source="test")
    writer = writer or make_writer(pipeline)
    collected: list[WorkItem] = []
    enricher = Enricher(pipeline.org, pipeline.inbox, pipeline.provider, collected.extend,
                        state=pipeline.state, workers=2)
    try:
        enricher.run_round()
    finally:
        enricher.close()
    writer.add(collected)
    return writer, writer.flush()


def entry(sobject: str, record_id: str, **fields: object) -> InboxEntry:
    return InboxEntry(sobject, record_id, fields)


def test_created_lead_and_account_get_their_values_in_one_call(
        pipeline: OrgPipeline, user: SalesforceUser) -> None:
    lead = user.create("Lead", LastName="Doe", Company="Acme", Email="jo@acme.example")
    account = user.create("Account", Name="Globex", Website="https://www.globex.test/about")
    _, report = run_once(pipeline, [entry("Lead", lead, Email="jo@acme.example"),
                                    entry("Account", account,
                                          Website="https://www.globex.test/about")])
    assert report.written == 2
    assert report.calls == 1  # the Lead and the Account in one Collections call
    lead_rec, account_rec = user.record(lead), user.record(account)
    assert lead_rec["Ily_Company_Name__c"] == "Acme Corporation"
    assert lead_rec["Ily_Match_Status__c"] == "Matched"
    assert lead_rec["Ily_Domain__c"] == "acme.example"
    assert account_rec["Ily_Company_Name__c"] == "Globex Corporation"
    assert account_rec["Ily_Industry__c"] == "Energy"
    assert pipeline.inbox.depth(pipeline.org) == 0


def test_free_mail_junk_and_unknown_companies_get_their_match_status(
        pipeline: OrgPipeline, user: SalesforceUser) -> None:
    free = user.create("Lead", LastName="A", Company="x", Email="someone@gmail.com")
    junk = user.create("Account", Name="Junk", Website="n/a")
    unknown = user.create("Account", Name="Nobody", Website="https://nobody-knows.example")
    run_once(pipeline, [entry("Lead", free, Email="someone@gmail.com"),
                        entry("Account", junk, Website="n/a"),
                        entry("Account", unknown, Website="https://nobody-knows.example")])
    assert user.record(free)["Ily_Match_Status__c"] == "Free Email"
    assert user.record(junk)["Ily_Match_Status__c"] == "Invalid Domain"
    assert user.record(unknown)["Ily_Match_Status__c"] == "Not Found"
    assert user.record(unknown)["Ily_Company_Name__c"] is None


def test_unchanged_values_are_not_written_again(
        pipeline: OrgPipeline, user: SalesforceUser) -> None:
    account = user.create("Account", Name="Acme", Website="acme.example")
    run_once(pipeline, [entry("Account", account, Website="acme.example")])
    writes = len(user.history(account))
    calls = user.calls()
    _, report = run_once(pipeline, [entry("Account", account, Website="acme.example")])
    assert report.skipped == 1
    assert report.calls == 0
    assert len(user.history(account)) == writes
    assert user.calls() == calls
    assert pipeline.inbox.depth(pipeline.org) == 0


def test_deleted_records_are_dropped_with_their_reason(
        pipeline: OrgPipeline, user: SalesforceUser) -> None:
    gone = user.create("Account", Name="Gone", Website="acme.example")
    user.delete("Account", gone)
    ok = user.create("Account", Name="Ok", Website="globex.test")
    _, report = run_once(pipeline, [entry("Account", gone, Website="acme.example"),
                                    entry("Account", ok, Website="globex.test")])
    assert report.dropped == {"deleted": 1}
    assert report.written == 1
    assert pipeline.inbox.depth(pipeline.org) == 0


def test_final_errors_drop_and_fixable_ones_are_fixed() -> None:
    # The classification the writer acts on; each outcome against devorg is in
    # test_writer_drops.py, test_writer_errors.py and test_writer_truncation.py.
    assert action_for(RecordError("CANNOT_UPDATE_CONVERTED_LEAD", "x")) is Action.DROP
    assert DROP_REASONS["CANNOT_UPDATE_CONVERTED_LEAD"] == "converted_lead"
    assert action_for(RecordError("NOT_FOUND", "x")) is Action.DROP
    assert action_for(RecordError("STRING_TOO_LONG", "x", ("F",))) is Action.TRUNCATE
    assert action_for(RecordError("INVALID_FIELD_FOR_INSERT_UPDATE", "x", ("F",))) \
        is Action.DROP_FIELDS
    assert action_for(RecordError("UNABLE_TO_LOCK_ROW", "x")) is Action.RETRY_LATER


def test_a_busy_org_calls_at_most_once_per_interval_and_an_idle_one_at_once(
        pipeline: OrgPipeline, user: SalesforceUser) -> None:
    now = [1_000.0]
    writer = Writer(pipeline.org, pipeline.rest, pipeline.inbox, pipeline.state,
                    pipeline.hashes, enrich=pipeline.config.enrich, budget=pipeline.budget,
                    min_interval=0.5, clock=lambda: now[0])
    window = pipeline.config.enrich.writer_window
    enricher = Enricher(pipeline.org, pipeline.inbox, pipeline.provider, writer.add,
                        state=pipeline.state, workers=1)
    try:
        first = user.create("Account", Name="Acme", Website="acme.example")
        pipeline.inbox.put(pipeline.org, [entry("Account", first, Website="acme.example")])
        enricher.run_round()
        assert writer.due_in() == pytest.approx(window)  # idle: only the window
        now[0] += window
        assert writer.flush().written == 1
        second = user.create("Account", Name="Globex", Website="globex.example")
        pipeline.inbox.put(pipeline.org, [entry("Account", second, Website="globex.example")])
        enricher.run_round()
        assert writer.due_in() == pytest.approx(0.5)  # after a call: the interval
        now[0] += 0.5
        assert writer.due_in() == 0.0
        assert writer.flush().written == 1
    finally:
        enricher.close()
    assert pipeline.inbox.depth(pipeline.org) == 0


def test_a_writer_refuses_stores_on_another_database_than_its_inbox(
        pipeline: OrgPipeline, tmp_path: Path) -> None:
    other = Database(tmp_path / "other.db")
    try:
        with pytest.raises(ValueError, match="inbox's database"):
            Writer(pipeline.org, pipeline.rest, pipeline.inbox, pipeline.state,
                   RecordHashStore(other), enrich=pipeline.config.enrich)
    finally:
        other.close()
