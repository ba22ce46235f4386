"""Reading the records to resync: a COUNT() decides between Bulk 2.0 and REST.

Salesforce's guidance: below about 2,000 records synchronous REST calls (query, then
sObject Collections) are cheaper than Bulk jobs; above, one Bulk 2.0 query job streams
every row in a few result pages, whatever the record count, in flat memory.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import requests

from ilyd.errors import SalesforceError
from ilyd.resync.pacing import wait_for_job
from ilyd.resync.plan import ObjectPlan
from ilyd.salesforce.bulk import BulkClient, JobState, PollPolicy
from ilyd.salesforce.rest import RestClient

__all__ = ["BulkRead", "Page", "count_records", "open_bulk_query", "parse_sf_datetime"]


@dataclass
class Page:
    """One page of rows and where the next one starts (None: this was the last)."""

    rows: Iterator[dict[str, str]]
    next_locator: str | None


def count_records(rest: RestClient, plan: ObjectPlan) -> int:
    """How many records the plan reads (one REST call)."""
    return rest.query(plan.count_query()).total_size


def parse_sf_datetime(text: str | None) -> dt.datetime | None:
    """`2024-05-01T12:34:56.000+0000` (Salesforce's JSON form) as an aware datetime."""
    if not text:
        return None
    return dt.datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")


@dataclass(frozen=True)
class BulkRead:
    """A finished query job to read pages from."""

    job_id: str
    created: str | None  # the job's createdDate


def open_bulk_query(bulk: BulkClient, plan: ObjectPlan, job_id: str | None,
                    poll: PollPolicy, rows: int | None = None) -> tuple[BulkRead, bool]:
    """Create the query job (unless `job_id` names one) and wait for it to finish
    (`rows`: the COUNT(), to time the polls).

    Returns the job and whether it was created now.
    """
    created = job_id is None
    started = None
    if job_id is None:
        info = bulk.create_query(plan.query())
        job_id, started = info.id, time.monotonic()
    done = wait_for_job(bulk, "query", job_id, poll, rows=rows, started=started)
    if done.state is not JobState.JOB_COMPLETE:
        raise SalesforceError(f"bulk query job {job_id} for the {plan.sobject} resync ended "
                              f"{done.state}: {done.error_message or 'no reason given'}")
    return BulkRead(job_id, done.raw.get("createdDate")), created


def bulk_pages(bulk: BulkClient, read: BulkRead, locator: str | None,
               page_size: Callable[[], int]) -> Iterator[Page]:
    """The job's result pages from `locator` on, each streamed from the socket.

    `page_size()` is asked before each page: the engine sizes pages (hence ingest jobs)
    as the read goes (see `ilyd.resync.pacing`). Salesforce takes a different
    `maxRecords` on every request of the same job.
    """
    while True:
        response = bulk.http.stream(
            "bulk_query_results", "GET", f"jobs/query/{read.job_id}/results",
            params={"maxRecords": page_size(), **({"locator": locator} if locator else {})},
            headers={"Accept": "text/csv"},
            what=f"results of bulk query job {read.job_id}")
        next_locator = response.headers.get("Sforce-Locator")
        if next_locator in (None, "", "null"):
            next_locator = None
        yield Page(_csv_rows(response), next_locator)
        if next_locator is None:
            return
        locator = next_locator


def _csv_rows(response: requests.Response) -> Iterator[dict[str, str]]:
    """A CSV body as dicts, parsed by the C csv reader straight off the socket (the
    generic line splitter in `ilyd.salesforce.bulk` costs a few µs a row more)."""
    try:
        response.raw.decode_content = True
        text = io.TextIOWrapper(response.raw, encoding="utf-8", newline="")
        rows = csv.reader(text)
        header = next(rows, None)
        if header is None:
            return
        for row in rows:
            if row:  # as csv.DictReader: a blank line is no record
                yield dict(zip(header, row, strict=False))
    finally:
        response.close()
