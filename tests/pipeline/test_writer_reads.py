"""The writer's read of the current values (for the overwrite policies and the scope)
against devorg: a flush of several sObjects reads them all in one Composite call, and the
policies hold as with one read per sObject."""

from __future__ import annotations

from collections.abc import Sequence

import requests

from ilyd.pipeline.runtime import OrgPipeline
from ilyd.pipeline.writer import FlushReport, Writer
from ilyd.provision.grant import grant_profiles
from ilyd.salesforce.soql import soql
from ilyd.store.inbox import InboxEntry
from tests.pipeline.conftest import SalesforceUser
from tests.pipeline.test_writer import make_writer, run_once

INDUSTRY = "Ily_Industry__c"


def flush(pipeline: OrgPipeline, entries: Sequence[InboxEntry],
          writer: Writer | None = None) -> FlushReport:
    """Put the entries, enrich them, and flush a writer (default a new one) once."""
    report = run_once(pipeline, entries, writer)[1]
    assert isinstance(report, FlushReport)
    return report


def composite_calls(user: SalesforceUser) -> int:
    """The Composite calls devorg counted for the org."""
    calls = requests.get(f"{user.base}/calls", timeout=30).json()["by_endpoint"]
    return int(calls.get("POST composite", 0))


def test_a_flush_of_leads_and_accounts_reads_both_in_one_call(
        pipeline: OrgPipeline, user: SalesforceUser) -> None:
    writer = make_writer(pipeline)
    writer.fields.of("Lead")  # the describes, once per writer
    writer.fields.of("Account")
    lead = user.create("Lead", LastName="Doe", Company="Acme", Email="jo@acme.example")
    account = user.create("Account", Name="Globex", Website="globex.test")
    before = user.calls()
    report = flush(pipeline, [InboxEntry("Lead", lead, {"Email": "jo@acme.example"}),
                              InboxEntry("Account", account, {"Website": "globex.test"})],
                   writer)
    assert report.written == 2
    assert (report.reads, report.calls) == (1, 1)
    assert user.calls() - before == 2  # one Composite read, one Collections write
    assert user.record(lead)["Ily_Company_Name__c"] == "Acme Corporation"
    assert user.record(account)["Ily_Company_Name__c"] == "Globex Corporation"


def test_a_persons_edit_is_kept_when_both_objects_are_read_in_one_call(
        pipeline: OrgPipeline, user: SalesforceUser) -> None:
    # The org's human user (Standard User profile) may edit the Industry field.
    grant_profiles(pipeline.rest, ["Standard User"], [f"Account.{INDUSTRY}"], edit=True)
    account = user.create("Account", Name="A", Website="acme.example")
    flush(pipeline, [InboxEntry("Account", account, {"Website": "acme.example"})])
    assert user.record(account)[INDUSTRY] == "Manufacturing"
    user.update("Account", account, **{INDUSTRY: "Curated by Sales"})
    user.update("Account", account, Website="globex.test")
    lead = user.create("Lead", LastName="Doe", Company="Acme", Email="jo@acme.example")
    report = flush(pipeline, [InboxEntry("Account", account, {"Website": "globex.test"}),
                              InboxEntry("Lead", lead, {"Email": "jo@acme.example"})])
    assert report.reads == 1
    assert user.record(account)["Ily_Company_Name__c"] == "Globex Corporation"
    assert user.record(account)[INDUSTRY] == "Curated by Sales"
    assert user.record(lead)["Ily_Company_Name__c"] == "Acme Corporation"


def test_an_object_whose_query_the_composite_call_refuses_is_read_on_its_own(
        pipeline: OrgPipeline, user: SalesforceUser) -> None:
    writer = make_writer(pipeline)
    first = user.create("Account", Name="One", Website="acme.example")
    flush(pipeline, [InboxEntry("Account", first, {"Website": "acme.example"})], writer)
    # The field's grant goes: for the integration user the column no longer exists, and
    # the writer still believes it is there (its read asks for it).
    for row in pipeline.rest.query(soql(
            "SELECT Id FROM FieldPermissions WHERE Field = {}", f"Account.{INDUSTRY}")):
        pipeline.rest.delete("FieldPermissions", row["Id"])
    account = user.create("Account", Name="Two", Website="globex.test")
    lead = user.create("Lead", LastName="Doe", Company="Acme", Email="jo@acme.example")
    composites = composite_calls(user)
    report = flush(pipeline, [InboxEntry("Account", account, {"Website": "globex.test"}),
                              InboxEntry("Lead", lead, {"Email": "jo@acme.example"})], writer)
    assert report.written == 2
    assert report.reads == 3  # both in one call; the Account alone, refused, then without
    assert composite_calls(user) == composites + 1
    assert [(u.sobject, u.field) for u in pipeline.state.unwritable(pipeline.org)] == [
        ("Account", INDUSTRY)]
    assert user.record(account)["Ily_Company_Name__c"] == "Globex Corporation"
    assert user.record(lead)["Ily_Company_Name__c"] == "Acme Corporation"
