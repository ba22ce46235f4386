"""A field gone from the org since the last describe: Salesforce fails the whole
Collections call with INVALID_FIELD naming the column in its message only."""

from __future__ import annotations

from ilyd.pipeline.runtime import OrgPipeline
from ilyd.pipeline.writer import unknown_column
from ilyd.salesforce.soql import soql
from ilyd.store.inbox import InboxEntry
from tests.pipeline.conftest import SalesforceUser
from tests.pipeline.test_writer import run_once


def test_the_column_named_in_the_message_is_dropped_and_the_batch_written_at_once(
        pipeline: OrgPipeline, user: SalesforceUser) -> None:
    first = user.create("Account", Name="One", Website="acme.example")
    writer, _ = run_once(pipeline, [InboxEntry("Account", first, {"Website": "acme.example"})])
    # The field's grant goes: for the integration user the column no longer exists.
    for row in pipeline.rest.query(soql(
            "SELECT Id FROM FieldPermissions WHERE Field = {}", "Account.Ily_Industry__c")):
        pipeline.rest.delete("FieldPermissions", row["Id"])
    sites = ["globex.test", "initech.example"]
    records = [user.create("Account", Name=f"N{n}", Website=w) for n, w in enumerate(sites)]
    # The same writer: it still believes the field is writable.
    _, report = run_once(pipeline, [InboxEntry("Account", r, {"Website": w})
                                    for r, w in zip(records, sites, strict=True)], writer)
    assert report.written == 2
    assert report.retried == 0
    refused = pipeline.state.unwritable(pipeline.org)
    assert [(u.sobject, u.field) for u in refused] == [("Account", "Ily_Industry__c")]
    assert "No such column" in refused[0].reason
    assert user.record(records[0])["Ily_Company_Name__c"] == "Globex Corporation"
    assert pipeline.inbox.depth(pipeline.org) == 0


def test_only_an_invalid_field_error_naming_a_column_is_read_as_one() -> None:
    message = "update on org x: No such column 'Ily_X__c' on sobject of type Lead"
    assert unknown_column("INVALID_FIELD", message) == ("Lead", "Ily_X__c")
    assert unknown_column("INVALID_FIELD", "No records were provided") is None
    assert unknown_column("MALFORMED_QUERY", message) is None
