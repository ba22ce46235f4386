"""Bulk API 2.0 against devorg: query jobs streamed by locator, ingest jobs and results."""

from __future__ import annotations

import uuid

import pytest

from ilyd.errors import SalesforceError
from ilyd.salesforce.bulk import BulkClient, JobState, PollPolicy
from ilyd.salesforce.rest import RestClient
from ilyd.salesforce.soql import like_pattern, soql

FAST_POLL = PollPolicy(initial=0.05, factor=1.5, max_interval=0.5, timeout=60)


@pytest.fixture
def bulk(rest: RestClient) -> BulkClient:
    """A BulkClient sharing the org's RestClient transport."""
    return BulkClient(rest, poll=FAST_POLL)


def _accounts(rest: RestClient, n: int) -> tuple[str, list[str]]:
    prefix = f"B{uuid.uuid4().hex[:10]}"
    ids: list[str] = []
    for start in range(0, n, 200):
        results = rest.create_collection("Account", [
            {"Name": f"{prefix} {i:04d}"} for i in range(start, min(n, start + 200))
        ])
        ids.extend(r.id for r in results if r.id)
    assert len(ids) == n
    return prefix, ids


def _named(prefix: str) -> str:
    return soql("SELECT Id, Name, Website FROM Account WHERE Name LIKE {} ORDER BY Name",
                like_pattern(prefix, prefix=True))


def test_bulk_query_streams_every_row_across_result_pages(
    rest: RestClient, bulk: BulkClient
) -> None:
    prefix, ids = _accounts(rest, 450)
    job = bulk.create_query(_named(prefix))
    assert bulk.wait("query", job.id).state is JobState.JOB_COMPLETE
    pages = []
    rows = []
    for page in bulk.result_pages(job.id, max_records=200):
        page_rows = list(page.rows)
        pages.append((page.locator, page.next_locator, page.number_of_records, len(page_rows)))
        rows.extend(page_rows)
    assert len(pages) == 3
    assert [p[3] for p in pages] == [200, 200, 50]
    assert pages[0][0] is None
    assert pages[-1][1] is None
    assert pages[1][0] == pages[0][1]
    assert sorted(r["Id"] for r in rows) == sorted(ids)
    assert set(rows[0]) == {"Id", "Name", "Website"}
    assert rows[0]["Website"] == ""


def test_bulk_query_resumes_from_a_stored_locator(rest: RestClient, bulk: BulkClient) -> None:
    prefix, ids = _accounts(rest, 250)
    job = bulk.create_query(_named(prefix))
    bulk.wait("query", job.id)
    first = next(bulk.result_pages(job.id, max_records=100))
    seen = [r["Id"] for r in first.rows]
    assert first.next_locator is not None
    for page in bulk.result_pages(job.id, locator=first.next_locator, max_records=100):
        seen.extend(r["Id"] for r in page.rows)
    assert sorted(seen) == sorted(ids)


def test_bulk_query_convenience_yields_dict_rows(rest: RestClient, bulk: BulkClient) -> None:
    prefix, ids = _accounts(rest, 5)
    rows = list(bulk.query(_named(prefix), max_records=2))
    assert [r["Id"] for r in rows] == ids
    assert rows[0]["Name"] == f"{prefix} 0000"


def test_bulk_query_with_bad_soql_fails_with_salesforces_words(bulk: BulkClient) -> None:
    with pytest.raises(SalesforceError) as caught:
        list(bulk.query("SELECT Id, Nope__c FROM Account"))
    assert "Nope__c" in str(caught.value)


def test_bulk_ingest_update_reports_successes_and_failures_per_row(
    rest: RestClient, bulk: BulkClient
) -> None:
    _, ids = _accounts(rest, 30)
    rows = [{"Id": i, "Website": f"https://{n}.example, \"quoted\""} for n, i in enumerate(ids)]
    rows[7]["Website"] = "x" * 300
    result = bulk.ingest("Account", "update", rows, ["Id", "Website"], poll=FAST_POLL)
    (job,) = result.jobs
    assert job.state is JobState.JOB_COMPLETE
    assert (result.records_processed, result.records_failed) == (30, 1)
    succeeded = list(bulk.successful_results(job.id))
    failed = list(bulk.failed_results(job.id))
    assert len(succeeded) == 29
    assert {"sf__Id", "sf__Created", "Id", "Website"} <= set(succeeded[0])
    assert [(f["Id"], "STRING_TOO_LONG" in f["sf__Error"]) for f in failed] == [(ids[7], True)]
    assert list(bulk.unprocessed_records(job.id)) == []
    assert rest.get("Account", ids[3], ["Website"])["Website"] == 'https://3.example, "quoted"'


def test_bulk_ingest_splits_uploads_over_the_size_limit_into_jobs(rest: RestClient) -> None:
    _, ids = _accounts(rest, 60)
    small = BulkClient(rest, poll=FAST_POLL, max_upload_bytes=1024)
    rows = [{"Id": i, "Website": f"https://split-{n}.example"} for n, i in enumerate(ids)]
    result = small.ingest("Account", "update", rows, ["Id", "Website"])
    assert len(result.jobs) > 1
    assert all(job.state is JobState.JOB_COMPLETE for job in result.jobs)
    assert (result.records_processed, result.records_failed) == (60, 0)
    assert rest.get("Account", ids[-1], ["Website"])["Website"] == "https://split-59.example"


def test_bulk_ingest_insert_creates_records(rest: RestClient, bulk: BulkClient) -> None:
    prefix = f"I{uuid.uuid4().hex[:10]}"
    rows = [{"Name": f"{prefix} {n}", "Website": None} for n in range(3)]
    (job,) = bulk.ingest("Account", "insert", rows, ["Name", "Website"]).jobs
    created = list(bulk.successful_results(job.id))
    assert [c["sf__Created"] for c in created] == ["true"] * 3
    names = {r["Name"] for r in rest.query(_named(prefix))}
    assert names == {f"{prefix} {n}" for n in range(3)}


def test_an_aborted_ingest_job_can_be_deleted(bulk: BulkClient) -> None:
    job = bulk.create_ingest("Account", "update")
    assert job.state is JobState.OPEN
    assert bulk.abort("ingest", job.id).state is JobState.ABORTED
    bulk.delete("ingest", job.id)
    with pytest.raises(SalesforceError) as caught:
        bulk.job("ingest", job.id)
    assert caught.value.status == 404


def test_bulk_query_rows_keep_commas_quotes_and_newlines(
    rest: RestClient, bulk: BulkClient
) -> None:
    prefix = f"Q{uuid.uuid4().hex[:10]}"
    name = f'{prefix} Smith, "Jr."\nsecond line, ünïcode'
    record_id = rest.create("Account", {"Name": name})
    rows = list(bulk.query(_named(prefix)))
    assert [(r["Id"], r["Name"]) for r in rows] == [(record_id, name)]
