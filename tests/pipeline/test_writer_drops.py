"""Records Salesforce will never take — a lead converted, a record deleted or purged
between the event and the write — are dropped with a counted reason (metric and log),
their inbox rows removed, while the rest of the same Collections call is written."""

from __future__ import annotations

from typing import Any

import requests
from structlog.testing import capture_logs

from ilyd import metrics
from ilyd.devorg.ids import to18
from ilyd.pipeline.runtime import OrgPipeline
from ilyd.store.inbox import InboxEntry
from tests.pipeline.conftest import SalesforceUser
from tests.pipeline.test_writer import run_once


def dropped(reason: str) -> float:
    return metrics.REGISTRY.get_sample_value(
        "ilyd_records_dropped_total", {"reason": reason}) or 0.0


def failures(org: str) -> float:
    return metrics.REGISTRY.get_sample_value(
        "ilyd_writeback_failures_total", {"org": org}) or 0.0


def convert(user: SalesforceUser, lead: str) -> dict[str, Any]:
    response = requests.post(f"{user.base}/leads/{lead}/convert", json={}, timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def drop_lines(logs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(line["record"], line["reason"]) for line in logs
            if line["event"] == "writeback_record_dropped"]


def test_a_converted_lead_is_dropped_and_the_other_leads_of_its_call_are_written(
        pipeline: OrgPipeline, user: SalesforceUser) -> None:
    converted = user.create("Lead", LastName="Doe", Company="Acme", Email="jo@acme.example")
    first = user.create("Lead", LastName="Roe", Company="Globex", Email="al@globex.test")
    second = user.create("Lead", LastName="Poe", Company="Acme", Email="ed@acme.example")
    account = convert(user, converted)["accountId"]
    assert user.record(converted)["IsConverted"] is True
    before, failed_before = dropped("converted_lead"), failures(pipeline.org)
    with capture_logs() as logs:
        _, report = run_once(pipeline, [
            InboxEntry("Lead", first, {"Email": "al@globex.test"}),
            InboxEntry("Lead", converted, {"Email": "jo@acme.example"}),
            InboxEntry("Lead", second, {"Email": "ed@acme.example"}),
        ])
    assert report.calls == 1  # one Collections call; the drop needs no resend
    assert report.dropped == {"converted_lead": 1}
    assert report.written == 2
    assert dropped("converted_lead") == before + 1
    assert failures(pipeline.org) == failed_before + 1
    assert drop_lines(logs) == [(converted, "converted_lead")]
    assert pipeline.inbox.depth(pipeline.org) == 0
    assert user.record(first)["Ily_Company_Name__c"] == "Globex Corporation"
    assert user.record(second)["Ily_Company_Name__c"] == "Acme Corporation"
    assert user.record(converted)["Ily_Company_Name__c"] is None
    # No input hash is kept for it: nothing would ever be skipped or retried for it.
    assert pipeline.state.inputs(pipeline.org, "Lead", [converted]) == {}
    assert user.record(account)["Name"] == "Acme"


def test_a_record_deleted_before_the_write_is_dropped_counted_and_logged(
        pipeline: OrgPipeline, user: SalesforceUser) -> None:
    gone = user.create("Account", Name="Gone", Website="acme.example")
    kept = user.create("Account", Name="Kept", Website="globex.test")
    user.delete("Account", gone)
    before, failed_before = dropped("deleted"), failures(pipeline.org)
    with capture_logs() as logs:
        _, report = run_once(pipeline, [InboxEntry("Account", gone, {"Website": "acme.example"}),
                                        InboxEntry("Account", kept, {"Website": "globex.test"})])
    assert report.calls == 1
    assert report.dropped == {"deleted": 1}
    assert report.written == 1
    assert dropped("deleted") == before + 1
    assert failures(pipeline.org) == failed_before + 1
    assert drop_lines(logs) == [(gone, "deleted")]
    assert pipeline.inbox.depth(pipeline.org) == 0
    assert user.record(kept)["Ily_Company_Name__c"] == "Globex Corporation"
    gone_now = requests.get(f"{user.base}/records/{gone}", timeout=10).json()
    assert gone_now["deleted"] is True
    assert gone_now["record"]["Ily_Company_Name__c"] is None


def test_a_record_purged_before_the_write_is_dropped_as_not_found(
        pipeline: OrgPipeline, user: SalesforceUser) -> None:
    # An id with a valid checksum that names no record (emptied from the recycle bin):
    # Salesforce answers INVALID_CROSS_REFERENCE_KEY for it in a Collections update.
    purged = to18("001000000PURGED")
    assert purged is not None
    kept = user.create("Account", Name="Kept", Website="acme.example")
    before = dropped("not_found")
    with capture_logs() as logs:
        _, report = run_once(pipeline, [
            InboxEntry("Account", purged, {"Website": "globex.test"}),
            InboxEntry("Account", kept, {"Website": "acme.example"})])
    assert report.dropped == {"not_found": 1}
    assert report.written == 1
    assert dropped("not_found") == before + 1
    assert drop_lines(logs) == [(purged, "not_found")]
    assert pipeline.inbox.depth(pipeline.org) == 0
    assert user.record(kept)["Ily_Company_Name__c"] == "Acme Corporation"
