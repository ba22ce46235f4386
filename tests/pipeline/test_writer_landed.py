"""A write whose confirmation was lost (the daemon died between Salesforce's answer and
the local commit) is not sent again when the record already holds its values."""

from __future__ import annotations

from ilyd.devorg import OrgInfo
from ilyd.pipeline.runtime import OrgPipeline
from ilyd.pipeline.writer import Writer
from ilyd.store.inbox import Inbox
from tests.pipeline.conftest import SalesforceUser
from tests.pipeline.test_writer import entry, run_once


def _next_run_writer(pipeline: OrgPipeline) -> Writer:
    """The writer of the next run: its inbox, opened anew, holds the rows left over."""
    restarted = Inbox(pipeline.inbox.db, pipeline.inbox.replay)
    return Writer(pipeline.org, pipeline.rest, restarted, pipeline.state, pipeline.hashes,
                  enrich=pipeline.config.enrich, budget=pipeline.budget)


def _ilyd_writes(user: SalesforceUser, info: OrgInfo, record: str) -> int:
    return sum(1 for h in user.history(record) if h["user_id"] == info.user_id)


def test_a_record_written_by_a_run_that_died_unconfirmed_is_confirmed_not_written_again(
        pipeline: OrgPipeline, user: SalesforceUser, info: OrgInfo) -> None:
    lead = user.create("Lead", LastName="Doe", Company="Acme", Email="jo@acme.example")
    _, first = run_once(pipeline, [entry("Lead", lead, Email="jo@acme.example")])
    assert first.written == 1  # type: ignore[attr-defined]
    # What a SIGKILL right after Salesforce's answer leaves: the row and no confirmation.
    pipeline.hashes.forget(pipeline.org, "Lead", [lead])
    pipeline.state.forget(pipeline.org, "Lead", [lead])
    pipeline.inbox.put(pipeline.org, [entry("Lead", lead, Email="jo@acme.example")],
                       source="test")
    _, again = run_once(pipeline, [], writer=_next_run_writer(pipeline))
    assert again.written == 0  # type: ignore[attr-defined]
    assert again.skipped == 1  # type: ignore[attr-defined]
    assert _ilyd_writes(user, info, lead) == 1
    assert pipeline.inbox.depth(pipeline.org) == 0
    # Confirmed as written: the same values later are skipped without a read.
    assert pipeline.hashes.get_many(pipeline.org, "Lead", [lead])


def test_a_recovered_record_whose_values_changed_is_written(
        pipeline: OrgPipeline, user: SalesforceUser, info: OrgInfo) -> None:
    lead = user.create("Lead", LastName="Doe", Company="Acme", Email="jo@acme.example")
    run_once(pipeline, [entry("Lead", lead, Email="jo@acme.example")])
    user.update("Lead", lead, Email="jo@globex.test")
    pipeline.inbox.put(pipeline.org, [entry("Lead", lead, Email="jo@globex.test")],
                       source="test")
    _, again = run_once(pipeline, [], writer=_next_run_writer(pipeline))
    assert again.written == 1  # type: ignore[attr-defined]
    assert user.record(lead)["Ily_Domain__c"] == "globex.test"
    assert _ilyd_writes(user, info, lead) == 2


def test_a_record_whose_lost_write_left_other_values_gets_the_confirmed_ones_back(
        pipeline: OrgPipeline, user: SalesforceUser, info: OrgInfo) -> None:
    lead = user.create("Lead", LastName="Doe", Company="Acme", Email="jo@acme.example")
    run_once(pipeline, [entry("Lead", lead, Email="jo@acme.example")])
    # A later write (for another domain) landed, and the daemon died before its answer
    # was confirmed: the stores still hold the acme values as the last written.
    pipeline.rest.update_mixed([("Lead", {"Id": lead, "Ily_Domain__c": "globex.test",
                                          "Ily_Company_Name__c": "Globex Corporation"})])
    pipeline.inbox.put(pipeline.org, [entry("Lead", lead, Email="jo@acme.example")],
                       source="test")
    _, again = run_once(pipeline, [], writer=_next_run_writer(pipeline))
    assert again.written == 1  # type: ignore[attr-defined]
    record = user.record(lead)
    assert record["Ily_Domain__c"] == "acme.example"
    assert record["Ily_Company_Name__c"] == "Acme Corporation"
