"""Provider text longer than its Ily field: an admin shortened the field (Tooling update of
the CustomField's length) after the writer read describe, or describe's length is shorter
than the catalogue's. The value is cut to the field's length and the record written."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from ilyd.devorg import DevOrg, OrgInfo
from ilyd.pipeline.enricher import Enricher
from ilyd.pipeline.runtime import OrgPipeline
from ilyd.pipeline.work import WorkItem
from ilyd.pipeline.writer import FlushReport, Writer
from ilyd.store.inbox import InboxEntry
from tests.pipeline.conftest import SalesforceUser, write_config
from tests.pipeline.test_writer import make_writer

LONG_NAME = "Consolidated Interplanetary Widget Manufacturing Holdings of the Outer Rim Ltd"
# Provider data that looks like the end of Salesforce's message must not be taken for it.
TRICKY_NAME = "Initech (max length=3) Strategic Synergy Partners International"
LONG_INDUSTRY = "Industrial Machinery and Precision Equipment Manufacturing"


@pytest.fixture
def config_path(tmp_path: Path, dev: DevOrg, info: OrgInfo) -> Path:
    """Overrides the pipeline conftest's: a dataset whose company names are long."""
    dataset = tmp_path / "companies.csv"
    dataset.write_text("domain,name,industry\nshort.example,Shorty Inc,Retail\n"
                       f"long.example,{LONG_NAME},{LONG_INDUSTRY}\n"
                       f"tricky.example,{TRICKY_NAME},Consulting\n")
    provider = f"""
[[org.enrich.provider]]
type = "dataset"
path = "{dataset}"
domain_column = "domain"
mapping = {{ name = "Ily_Company_Name__c", industry = "Ily_Industry__c" }}
"""
    return write_config(tmp_path, dev, [info], org_extra=provider)


def shorten_company_name(pipeline: OrgPipeline, length: int,
                         name: str = "Ily_Company_Name") -> None:
    """What an admin does in Setup: the Account field's length, via the Tooling API."""
    rows = list(pipeline.rest.query(
        f"SELECT Id FROM CustomField WHERE DeveloperName = '{name}'"  # noqa: S608
        " AND TableEnumOrId = 'Account'", tooling=True))
    assert len(rows) == 1
    field_id = str(rows[0]["Id"])
    metadata = dict(pipeline.rest.get("CustomField", field_id, tooling=True)["Metadata"])
    pipeline.rest.update("CustomField", field_id, {"Metadata": {**metadata, "length": length}},
                         tooling=True)
    described = {f["name"]: f for f in pipeline.rest.describe("Account", refresh=True)["fields"]}
    assert described[f"{name}__c"]["length"] == length


def write(pipeline: OrgPipeline, writer: Writer, entries: Sequence[InboxEntry]) -> FlushReport:
    pipeline.inbox.put(pipeline.org, entries, source="test")
    collected: list[WorkItem] = []
    enricher = Enricher(pipeline.org, pipeline.inbox, pipeline.provider, collected.extend,
                        state=pipeline.state)
    try:
        enricher.run_round()
    finally:
        enricher.close()
    writer.add(collected)
    return writer.flush()


def ilyd_writes(user: SalesforceUser, record: str) -> int:
    return sum(1 for h in user.history(record)
               if "Ily_Company_Name__c" in h["changed_fields"])


def test_a_field_shortened_after_describe_gets_the_value_cut_to_salesforces_stated_length(
        pipeline: OrgPipeline, user: SalesforceUser) -> None:
    writer = make_writer(pipeline)
    warm = user.create("Account", Name="Warm", Website="short.example")
    assert write(pipeline, writer, [InboxEntry("Account", warm, {"Website": "short.example"})]
                 ).written == 1  # the writer now holds describe's length (255)
    shorten_company_name(pipeline, 40)
    long = user.create("Account", Name="Long", Website="long.example")
    with capture_logs() as logs:
        report = write(pipeline, writer, [InboxEntry("Account", long,
                                                     {"Website": "long.example"})])
    assert report.written == 1
    assert report.calls == 2  # refused with STRING_TOO_LONG, then resent cut
    assert report.retried == 0
    assert user.record(long)["Ily_Company_Name__c"] == LONG_NAME[:40]
    assert ilyd_writes(user, long) == 1  # the refused attempt wrote nothing
    cut = [line for line in logs if line["event"] == "ily_value_truncated"]
    assert [(c["record"], c["field"], c["length"], c["max_length"], c["error"])
            for c in cut] == [(long, "Ily_Company_Name__c", len(LONG_NAME), 40,
                               "STRING_TOO_LONG")]
    assert pipeline.inbox.depth(pipeline.org) == 0
    # The stated length is remembered: the next long value is cut before it is sent.
    another = user.create("Account", Name="Another", Website="tricky.example")
    report = write(pipeline, writer, [InboxEntry("Account", another,
                                                 {"Website": "tricky.example"})])
    assert (report.written, report.calls) == (1, 1)
    assert user.record(another)["Ily_Company_Name__c"] == TRICKY_NAME[:40]


def test_a_described_length_shorter_than_the_catalogues_cuts_values_before_sending(
        pipeline: OrgPipeline, user: SalesforceUser) -> None:
    shorten_company_name(pipeline, 30)
    long = user.create("Account", Name="Long", Website="long.example")
    short = user.create("Account", Name="Short", Website="short.example")
    report = write(pipeline, make_writer(pipeline), [
        InboxEntry("Account", long, {"Website": "long.example"}),
        InboxEntry("Account", short, {"Website": "short.example"})])
    assert (report.written, report.calls) == (2, 1)  # nothing refused, nothing resent
    assert user.record(long)["Ily_Company_Name__c"] == LONG_NAME[:30]
    assert user.record(short)["Ily_Company_Name__c"] == "Shorty Inc"


def test_the_limit_is_read_from_the_end_of_salesforces_message_not_from_the_value(
        pipeline: OrgPipeline, user: SalesforceUser) -> None:
    writer = make_writer(pipeline)
    warm = user.create("Account", Name="Warm", Website="short.example")
    write(pipeline, writer, [InboxEntry("Account", warm, {"Website": "short.example"})])
    shorten_company_name(pipeline, 20)
    tricky = user.create("Account", Name="Tricky", Website="tricky.example")
    report = write(pipeline, writer, [InboxEntry("Account", tricky,
                                                 {"Website": "tricky.example"})])
    assert (report.written, report.calls) == (1, 2)
    assert user.record(tricky)["Ily_Company_Name__c"] == TRICKY_NAME[:20]


def test_devorg_refuses_a_long_value_in_collections_with_salesforces_message(
        pipeline: OrgPipeline, user: SalesforceUser) -> None:
    shorten_company_name(pipeline, 40)
    record = user.create("Account", Name="Long", Website="long.example")
    ok = user.create("Account", Name="Ok", Website="short.example")
    results = pipeline.rest.update_collection("Account", [
        {"Id": record, "Ily_Company_Name__c": LONG_NAME},
        {"Id": ok, "Ily_Company_Name__c": LONG_NAME[:40]}])
    assert not results[0].success
    [error] = results[0].errors
    assert error.status_code == "STRING_TOO_LONG"
    assert error.fields == ("Ily_Company_Name__c",)
    assert error.message == (f"Ily Company Name: data value too large: {LONG_NAME} "
                             "(max length=40)")
    assert results[1].success
    assert user.record(record)["Ily_Company_Name__c"] is None


def test_two_fields_shortened_after_describe_are_both_cut_within_one_flush(
        pipeline: OrgPipeline, user: SalesforceUser) -> None:
    writer = make_writer(pipeline)
    warm = user.create("Account", Name="Warm", Website="short.example")
    write(pipeline, writer, [InboxEntry("Account", warm, {"Website": "short.example"})])
    shorten_company_name(pipeline, 25)
    shorten_company_name(pipeline, 15, name="Ily_Industry")
    long = user.create("Account", Name="Long", Website="long.example")
    report = write(pipeline, writer, [InboxEntry("Account", long,
                                                 {"Website": "long.example"})])
    # devorg names the first failing field of a record per answer: one resend each.
    assert (report.written, report.calls, report.retried) == (1, 3, 0)
    record = user.record(long)
    assert record["Ily_Company_Name__c"] == LONG_NAME[:25]
    assert record["Ily_Industry__c"] == LONG_INDUSTRY[:15]
