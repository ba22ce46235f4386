"""Reading the records to resync: a COUNT() decides between Bulk 2.0 and REST.

Salesforce's guidance: below about 2,000 records synchronous REST calls (query, then
sObject Collections) are cheaper than Bulk jobs; above, one Bulk 2.0 query job streams
every row in a few result pages, whatever the record count, in flat memory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from ilyd.errors import SalesforceError
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
                    poll: PollPolicy) -> tuple[BulkRead, bool]:
    """Create the query job (unless `job_id` names one) and wait for it to finish.

    Returns the job and whether it was created now.
    """
    created = job_id is None
    if job_id is None:
        info = bulk.create_query(plan.query())
        job_id = info.id
    done = bulk.wait("query", job_id, poll)
    if done.state is not JobState.JOB_COMPLETE:
        raise SalesforceError(f"bulk query job {job_id} for the {plan.sobject} resync ended "
                              f"{done.state}: {done.error_message or 'no reason given'}")
    return BulkRead(job_id, done.raw.get("createdDate")), created


def bulk_pages(bulk: BulkClient, read: BulkRead, locator: str | None,
               page_size: int) -> Iterator[Page]:
    """The job's result pages from `locator` on, each streamed from the socket."""
    for page in bulk.result_pages(read.job_id, locator=locator or None, max_records=page_size):
        yield Page(page.rows, page.next_locator)
