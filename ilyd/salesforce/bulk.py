"""Bulk API 2.0: query jobs streamed page by page, ingest jobs uploaded in bounded chunks.

Memory stays flat whatever the record count: query results are parsed from the socket
one CSV row at a time, and ingest data is spooled to disk per job (Salesforce takes one
upload of at most 150 MB per job; we cut well before that).
"""

from __future__ import annotations

import codecs
import csv
import io
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO, Any

import requests
import structlog

from ilyd.backoff import Backoff, pause
from ilyd.errors import SalesforceError
from ilyd.salesforce.rest import RestClient

__all__ = ["BulkClient", "IngestResults", "JobInfo", "JobState", "PollPolicy", "ResultPage"]

log = structlog.get_logger(__name__)

# simple-salesforce stops at 100 MB because Salesforce's 150 MB counts the base64 form.
DEFAULT_MAX_UPLOAD_BYTES = 64 * 1024 * 1024
_SPOOL_IN_MEMORY_BYTES = 4 * 1024 * 1024


class JobState(StrEnum):
    """States of a Bulk 2.0 job."""

    OPEN = "Open"
    UPLOAD_COMPLETE = "UploadComplete"
    IN_PROGRESS = "InProgress"
    JOB_COMPLETE = "JobComplete"
    FAILED = "Failed"
    ABORTED = "Aborted"

    @property
    def terminal(self) -> bool:
        """True once the job will not change any more."""
        return self in (JobState.JOB_COMPLETE, JobState.FAILED, JobState.ABORTED)


@dataclass(frozen=True)
class JobInfo:
    """A Bulk 2.0 job's status as Salesforce reported it."""

    id: str
    state: JobState
    object: str
    operation: str
    records_processed: int = 0
    records_failed: int = 0
    error_message: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> JobInfo:
        """Build from the job JSON of create/poll answers."""
        return cls(
            id=str(body["id"]),
            state=JobState(body["state"]),
            object=str(body.get("object", "")),
            operation=str(body.get("operation", "")),
            records_processed=int(body.get("numberRecordsProcessed") or 0),
            records_failed=int(body.get("numberRecordsFailed") or 0),
            error_message=body.get("errorMessage") or None,
            raw=dict(body),
        )


@dataclass(frozen=True)
class PollPolicy:
    """How to wait for a job: intervals growing by `factor` up to `max_interval`, with
    equal jitter (`ilyd.backoff`), and an optional overall deadline."""

    initial: float = 0.5
    factor: float = 1.6
    max_interval: float = 10.0
    timeout: float | None = None


@dataclass
class ResultPage:
    """One page of query results. Consume `rows` before asking for the next page."""

    locator: str | None
    next_locator: str | None
    number_of_records: int | None
    rows: Iterator[dict[str, str]]


@dataclass(frozen=True)
class IngestResults:
    """The jobs of one `ingest` call, with their final state."""

    jobs: tuple[JobInfo, ...]

    @property
    def records_processed(self) -> int:
        """Rows Salesforce processed across the jobs (successful + failed)."""
        return sum(j.records_processed for j in self.jobs)

    @property
    def records_failed(self) -> int:
        """Rows that failed across the jobs (details in `failed_results`)."""
        return sum(j.records_failed for j in self.jobs)


def _lines(response: requests.Response) -> Iterator[str]:
    """The body's text lines, line endings kept (csv needs them inside quoted fields)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    pending = ""
    for chunk in response.iter_content(chunk_size=64 * 1024):
        pending += decoder.decode(chunk)
        *complete, pending = pending.split("\n")
        for line in complete:
            yield line + "\n"
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


def _csv_rows(response: requests.Response) -> Iterator[dict[str, str]]:
    """Parse a streamed CSV body row by row, closing the response at the end."""
    try:
        yield from csv.DictReader(_lines(response))
    finally:
        response.close()


class BulkClient:
    """Bulk API 2.0 jobs of one org, sharing the org's RestClient transport."""

    def __init__(self, rest: RestClient, *, poll: PollPolicy | None = None,
                 max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES) -> None:
        self.http = rest.http
        self.poll = poll or PollPolicy()
        self.max_upload_bytes = max_upload_bytes

    # --- jobs --------------------------------------------------------------------------

    def job(self, kind: str, job_id: str) -> JobInfo:
        """The status of an `ingest` or `query` job."""
        return JobInfo.from_json(self.http.json(f"bulk_{kind}_poll", "GET",
                                                f"jobs/{kind}/{job_id}",
                                                what=f"bulk {kind} job {job_id}"))

    def wait(self, kind: str, job_id: str, poll: PollPolicy | None = None) -> JobInfo:
        """Poll until the job is terminal; return its final status (Failed included)."""
        policy = poll or self.poll
        deadline = None if policy.timeout is None else time.monotonic() + policy.timeout
        schedule = Backoff(policy.initial, policy.max_interval, policy.factor)
        polls = 0
        while True:
            info = self.job(kind, job_id)
            if info.state.terminal:
                return info
            polls += 1
            if deadline is not None and time.monotonic() + schedule.ceiling(polls) > deadline:
                raise SalesforceError(f"bulk {kind} job {job_id} on org {self.http.org} is "
                                      f"still {info.state} after {policy.timeout} s; it keeps "
                                      "running in Salesforce, poll it again later")
            pause(schedule.delay(polls), "bulk job")

    def abort(self, kind: str, job_id: str) -> JobInfo:
        """Abort an unfinished job."""
        return JobInfo.from_json(self.http.json(f"bulk_{kind}_abort", "PATCH",
                                                f"jobs/{kind}/{job_id}",
                                                json={"state": "Aborted"},
                                                what=f"abort of bulk {kind} job {job_id}"))

    def delete(self, kind: str, job_id: str) -> None:
        """Delete a terminal job and its data."""
        self.http.request(f"bulk_{kind}_delete", "DELETE", f"jobs/{kind}/{job_id}",
                          what=f"delete of bulk {kind} job {job_id}")

    # --- query -------------------------------------------------------------------------

    def create_query(self, soql: str, *, include_deleted: bool = False) -> JobInfo:
        """Create a query job (not retried: a retry could start a second job)."""
        body = {"operation": "queryAll" if include_deleted else "query", "query": soql,
                "columnDelimiter": "COMMA", "lineEnding": "LF"}
        return JobInfo.from_json(self.http.json("bulk_query_create", "POST", "jobs/query",
                                                json=body, what="bulk query job creation"))

    def result_pages(self, job_id: str, *, locator: str | None = None,
                     max_records: int | None = None) -> Iterator[ResultPage]:
        """Pages of a finished query job's results, from `locator` (to resume) onwards.

        Each page's `rows` stream from the socket; a page's `next_locator` is what to
        store to resume after it.
        """
        while True:
            params: dict[str, str | int] = {}
            if locator:
                params["locator"] = locator
            if max_records:
                params["maxRecords"] = max_records
            response = self.http.stream("bulk_query_results", "GET",
                                        f"jobs/query/{job_id}/results", params=params,
                                        headers={"Accept": "text/csv"},
                                        what=f"results of bulk query job {job_id}")
            next_locator = response.headers.get("Sforce-Locator")
            if next_locator in (None, "", "null"):
                next_locator = None
            count = response.headers.get("Sforce-NumberOfRecords")
            yield ResultPage(locator=locator, next_locator=next_locator,
                             number_of_records=int(count) if count and count.isdigit() else None,
                             rows=_csv_rows(response))
            if next_locator is None:
                return
            locator = next_locator

    def query(self, soql: str, *, include_deleted: bool = False,
              max_records: int | None = None) -> Iterator[dict[str, str]]:
        """Run a query job and stream its rows (CSV strings; "" for null values)."""
        job = self.create_query(soql, include_deleted=include_deleted)
        done = self.wait("query", job.id)
        if done.state is not JobState.JOB_COMPLETE:
            raise SalesforceError(f"bulk query job {job.id} on org {self.http.org} ended "
                                  f"{done.state}: {done.error_message or 'no reason given'}")
        for page in self.result_pages(job.id, max_records=max_records):
            yield from page.rows

    # --- ingest ------------------------------------------------------------------------

    def create_ingest(self, sobject: str, operation: str, *,
                      external_id_field: str | None = None) -> JobInfo:
        """Create an ingest job (insert, update, upsert, delete, hardDelete)."""
        body: dict[str, Any] = {"object": sobject, "operation": operation,
                                "contentType": "CSV", "columnDelimiter": "COMMA",
                                "lineEnding": "LF"}
        if external_id_field:
            body["externalIdFieldName"] = external_id_field
        return JobInfo.from_json(self.http.json("bulk_ingest_create", "POST", "jobs/ingest",
                                                json=body,
                                                what=f"bulk {operation} job creation on {sobject}"))

    def upload(self, job_id: str, data: bytes | IO[bytes]) -> None:
        """Upload the job's one CSV (header row first)."""
        if not isinstance(data, bytes):
            data.seek(0)
        self.http.request("bulk_ingest_upload", "PUT", f"jobs/ingest/{job_id}/batches",
                          data=data, headers={"Content-Type": "text/csv"},
                          # A resent PUT after a lost answer would be refused as a second
                          # upload; only connection-level failures before it are retried.
                          retry_safe=False, what=f"upload to bulk ingest job {job_id}")

    def close(self, job_id: str) -> JobInfo:
        """Mark the upload complete so Salesforce starts processing."""
        return JobInfo.from_json(self.http.json("bulk_ingest_close", "PATCH",
                                                f"jobs/ingest/{job_id}",
                                                json={"state": "UploadComplete"},
                                                what=f"close of bulk ingest job {job_id}"))

    def ingest(self, sobject: str, operation: str, rows: Iterable[Mapping[str, Any]],
               columns: Sequence[str], *, external_id_field: str | None = None,
               poll: PollPolicy | None = None) -> IngestResults:
        """Load `rows` (keys = `columns`) in as many jobs as the upload size needs; wait
        for each; return their final status. Per-row outcomes: `successful_results`,
        `failed_results`, `unprocessed_records` of each job."""
        jobs: list[JobInfo] = []
        for chunk in self._csv_chunks(rows, columns):
            with chunk:
                job = self.create_ingest(sobject, operation, external_id_field=external_id_field)
                try:
                    self.upload(job.id, chunk)
                    self.close(job.id)
                except SalesforceError:
                    # Leave no Open job behind holding the upload slot.
                    self._abort_quietly(job.id)
                    raise
            jobs.append(self.wait("ingest", job.id, poll))
            log.info("sf_bulk_ingest_job", org=self.http.org, job_id=job.id,
                     state=jobs[-1].state, processed=jobs[-1].records_processed,
                     failed=jobs[-1].records_failed)
        return IngestResults(tuple(jobs))

    def _abort_quietly(self, job_id: str) -> None:
        try:
            self.abort("ingest", job_id)
        except SalesforceError as exc:
            log.warning("sf_bulk_abort_failed", org=self.http.org, job_id=job_id, error=str(exc))

    def _csv_chunks(self, rows: Iterable[Mapping[str, Any]],
                    columns: Sequence[str]) -> Iterator[IO[bytes]]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")

        def encode(values: Sequence[str]) -> bytes:
            buffer.seek(0)
            buffer.truncate()
            writer.writerow(values)
            return buffer.getvalue().encode("utf-8")

        header = encode(columns)
        spool: IO[bytes] | None = None
        for row in rows:
            line = encode([_csv_value(row.get(c)) for c in columns])
            if spool is not None and spool.tell() + len(line) > self.max_upload_bytes:
                yield spool
                spool = None
            if spool is None:
                # Handed to the caller, which closes it after the upload.
                spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115
                spool.write(header)
            spool.write(line)
        if spool is not None:
            yield spool

    # --- ingest results ----------------------------------------------------------------

    def successful_results(self, job_id: str) -> Iterator[dict[str, str]]:
        """Rows that succeeded: `sf__Id`, `sf__Created`, then the uploaded columns."""
        return self._ingest_result(job_id, "successfulResults")

    def failed_results(self, job_id: str) -> Iterator[dict[str, str]]:
        """Rows that failed: `sf__Id`, `sf__Error`, then the uploaded columns."""
        return self._ingest_result(job_id, "failedResults")

    def unprocessed_records(self, job_id: str) -> Iterator[dict[str, str]]:
        """Rows never processed (job aborted or failed): the uploaded columns."""
        return self._ingest_result(job_id, "unprocessedrecords")

    def _ingest_result(self, job_id: str, which: str) -> Iterator[dict[str, str]]:
        response = self.http.stream(f"bulk_ingest_{which.lower()}", "GET",
                                    f"jobs/ingest/{job_id}/{which}",
                                    headers={"Accept": "text/csv"},
                                    what=f"{which} of bulk ingest job {job_id}")
        return _csv_rows(response)


def _csv_value(value: Any) -> str:
    if value is None:
        # Bulk 2.0 sets a field to null only with #N/A; an empty cell leaves it unchanged.
        return "#N/A"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
