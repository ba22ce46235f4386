"""Per-record errors and the API budget, against devorg's faults, FLS and limits."""

from __future__ import annotations

import requests

from ilyd.pipeline.runtime import OrgPipeline
from ilyd.salesforce.soql import soql
from ilyd.store.inbox import InboxEntry
from tests.pipeline.conftest import SalesforceUser
from tests.pipeline.test_writer import make_writer, run_once


def test_locked_rows_are_retried_later_and_written_once_unlocked(
        pipeline: OrgPipeline, user: SalesforceUser) -> None:
    account = user.create("Account", Name="Acme", Website="acme.example")
    admin = user.base.rsplit("/orgs/", 1)[0]
    requests.post(f"{admin}/faults", json={"kind": "lock_row", "share": 1.0},
                  timeout=10).raise_for_status()
    _, report = run_once(pipeline, [InboxEntry("Account", account, {"Website": "acme.example"})])
    assert report.retried == 1
    assert report.written == 0
    assert pipeline.inbox.depth(pipeline.org) == 1  # still waiting, not lost
    requests.delete(f"{admin}/faults", timeout=10).raise_for_status()
    # The retry is due after its backoff: make it due now and run again.
    pipeline.inbox.db.connection().execute("UPDATE inbox SET lease_until = NULL")
    _, report = run_once(pipeline, [])
    assert report.written == 1
    assert user.record(account)["Ily_Company_Name__c"] == "Acme Corporation"


def test_a_field_the_org_refuses_is_marked_unwritable_and_the_rest_is_written(
        pipeline: OrgPipeline, user: SalesforceUser) -> None:
    first = user.create("Account", Name="One", Website="acme.example")
    writer, _ = run_once(pipeline, [InboxEntry("Account", first, {"Website": "acme.example"})])
    rows = list(pipeline.rest.query(soql(
        "SELECT Id FROM FieldPermissions WHERE Field = {}", "Account.Ily_Industry__c")))
    for row in rows:
        pipeline.rest.update("FieldPermissions", row["Id"], {"PermissionsEdit": False})
    second = user.create("Account", Name="Two", Website="globex.test")
    pipeline.inbox.put(pipeline.org, [InboxEntry("Account", second, {"Website": "globex.test"})])
    from ilyd.pipeline.enricher import Enricher

    enricher = Enricher(pipeline.org, pipeline.inbox, pipeline.provider, writer.add)
    try:
        enricher.run_round()
    finally:
        enricher.close()
    report = writer.flush()  # the writer still believes the field is writable
    assert report.written == 1
    refused = pipeline.state.unwritable(pipeline.org)
    assert [(u.sobject, u.field) for u in refused] == [("Account", "Ily_Industry__c")]
    assert "INVALID_FIELD_FOR_INSERT_UPDATE" in refused[0].reason
    record = user.record(second)
    assert record["Ily_Company_Name__c"] == "Globex Corporation"
    assert record["Ily_Industry__c"] is None


def test_over_the_api_limit_work_waits_in_the_inbox_and_resumes_by_itself(
        pipeline: OrgPipeline, user: SalesforceUser) -> None:
    account = user.create("Account", Name="Acme", Website="acme.example")
    user.set_calls(15000)  # the org's whole daily allowance is spent
    _, report = run_once(pipeline, [InboxEntry("Account", account, {"Website": "acme.example"})])
    assert report.throttled
    assert pipeline.budget.throttled
    assert pipeline.inbox.depth(pipeline.org) == 1
    assert user.record(account)["Ily_Match_Status__c"] is None
    user.set_calls(0)  # the rolling window frees calls
    pipeline.inbox.db.connection().execute("UPDATE inbox SET lease_until = NULL")
    writer = make_writer(pipeline)
    from tests.pipeline.conftest import wait_until

    def written() -> bool:
        pipeline.inbox.db.connection().execute("UPDATE inbox SET lease_until = NULL")
        _, again = run_once(pipeline, [])
        return again.written == 1

    wait_until(written, timeout=10, what="the throttle to lift")
    assert not pipeline.budget.throttled
    assert pipeline.inbox.depth(pipeline.org) == 0
    assert user.record(account)["Ily_Company_Name__c"] == "Acme Corporation"
    del writer


def test_usage_past_the_budget_ratio_throttles_before_salesforce_refuses(
        pipeline: OrgPipeline, user: SalesforceUser) -> None:
    user.set_calls(9000)  # 60 % of 15,000, past the default 50 % budget
    pipeline.rest.limits()  # any response carries Sforce-Limit-Info
    assert not pipeline.budget.allow()
    assert pipeline.budget.throttled
    assert "api_budget_ratio" in (pipeline.budget.reason or "")
