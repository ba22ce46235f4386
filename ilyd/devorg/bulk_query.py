"""Bulk API 2.0 query jobs: the query runs in a worker thread (counting its rows), then
results are served page by page (`maxRecords`, `Sforce-Locator`) as streamed CSV.

Pages are produced from the SOQL engine's lazy record iterator, never materialised, so a
million-row result costs no more memory than a small one."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ilyd.devorg.bulk_jobs import TERMINAL, Job, JobRegistry, csv_lines, dialect
from ilyd.devorg.query import OrgSchema, OrgSource, soql_engine
from ilyd.devorg.rest import V, context, parse_json_body
from ilyd.devorg.values import to_csv
from ilyd.devorg.web import ApiError, Request, Response, Router, json_response

if TYPE_CHECKING:
    from ilyd.devorg.app import DevOrg

J = V + r"/jobs/query"
DEFAULT_PAGE = 50_000


@dataclass
class QueryJob(Job):
    """A query job; `cursor` continues the last page sequentially."""

    query: str = ""
    cursor: tuple[int, Iterator[Mapping[str, Any]]] | None = None
    columns: tuple[str, ...] = ()

    def info(self) -> dict[str, object]:
        """JobInfo JSON."""
        out = self.base_info("V2Query")
        out.update(numberRecordsProcessed=self.processed, retries=0,
                   totalProcessingTime=self.processing_ms, isPkChunkingSupported=True)
        if self.error_message:
            out["errorMessage"] = self.error_message
        return out

    def run(self) -> tuple[tuple[str, ...], Iterator[Mapping[str, Any]]]:
        """Execute the query afresh: (columns, lazy records)."""
        soql = soql_engine()
        all_rows = self.operation == "queryAll"
        result = soql.execute(soql.parse(self.query), OrgSchema(self.org, self.user_id),
                              OrgSource(self.org, all_rows=all_rows), all_rows=all_rows)
        return tuple(result.columns), iter(result.records)


def register(router: Router, dev: DevOrg) -> None:
    """Add the query-job routes."""
    api = QueryApi(dev.bulk_jobs)  # type: ignore[attr-defined]
    router.add("POST GET", J, api.root, "jobs.query")
    router.add("GET PATCH DELETE", J + r"/(?P<job>750\w+)", api.job, "jobs.query.job")
    router.add("GET", J + r"/(?P<job>750\w+)/results", api.results, "jobs.query.results")


class QueryApi:
    """Handlers for /jobs/query."""

    def __init__(self, jobs: JobRegistry) -> None:
        self.jobs = jobs

    def root(self, request: Request) -> Response:
        """POST creates (and starts) a job; GET lists this org's jobs."""
        org, user_id, _ = context(request)
        if request.method == "GET":
            return json_response({"done": True, "records": [
                j.info() for j in self.jobs.list(org, QueryJob)],  # type: ignore[attr-defined]
                "nextRecordsUrl": None})
        body = parse_json_body(request)
        operation = str(body.get("operation") or "query")
        if operation not in ("query", "queryAll"):
            raise ApiError(400, "INVALIDJOB", f"Invalid operation: {operation}")
        delimiter, ending = dialect(body)
        text = str(body.get("query") or "")
        soql = soql_engine()
        if soql is None:
            raise ApiError(501, "NOT_IMPLEMENTED", "SOQL is not available in this build yet")
        try:
            parsed = soql.parse(text)
            result = soql.execute(parsed, OrgSchema(org, user_id), OrgSource(org))
        except soql.SoqlError as exc:
            raise ApiError(400, exc.error_code, exc.message) from None
        job = QueryJob(org.ids.new("750"), org, user_id, operation, str(parsed.sobject),
                       request.params["version"], delimiter, ending, query=text,
                       columns=tuple(result.columns))
        job.set_state("UploadComplete")
        self.jobs.add(job)
        answer = job.info()
        threading.Thread(target=_count, args=(job,), daemon=True,
                         name=f"devorg-query-{job.id}").start()
        return json_response(answer)

    def job(self, request: Request) -> Response:
        """GET info, PATCH {"state": "Aborted"}, DELETE."""
        org, _, _ = context(request)
        job: QueryJob = self.jobs.get(org, request.params["job"], QueryJob)  # type: ignore[assignment]
        if request.method == "GET":
            return json_response(job.info())
        if request.method == "DELETE":
            self.jobs.remove(job.id)
            return Response(204, b"", content_type=None)
        if parse_json_body(request).get("state") != "Aborted" or job.state in TERMINAL:
            raise ApiError(400, "INVALIDJOBSTATE",
                           f"Job with ID {job.id} cannot be aborted in state {job.state}")
        job.set_state("Aborted")
        return json_response(job.info())

    def results(self, request: Request) -> Response:
        """One page of CSV results; `Sforce-Locator` names the next one ("null": last)."""
        org, _, _ = context(request)
        job: QueryJob = self.jobs.get(org, request.params["job"], QueryJob)  # type: ignore[assignment]
        if job.state != "JobComplete":
            raise ApiError(400, "INVALIDJOBSTATE", f"Job with ID {job.id} isn't complete")
        locator = request.arg("locator") or ""
        try:
            offset = int(locator, 36) if locator and locator != "null" else 0
            size = int(request.arg("maxRecords") or DEFAULT_PAGE)
        except ValueError:
            raise ApiError(400, "INVALIDLOCATOR", f"Invalid locator: {locator}") from None
        if size <= 0:
            raise ApiError(400, "INVALIDPARAMETER", "maxRecords must be greater than 0")
        with job.lock:
            if job.cursor is not None and job.cursor[0] == offset:
                records = job.cursor[1]
            else:
                _, records = job.run()
                records = itertools.islice(records, offset, None)
            end = min(offset + size, job.processed)
            job.cursor = (end, records) if end < job.processed else None
        count = end - offset
        headers = {"Sforce-NumberOfRecords": str(count),
                   "Sforce-Locator": _b36(end) if end < job.processed else "null"}
        rows = (_row(rec, job.columns) for rec in itertools.islice(records, count))
        body = csv_lines(itertools.chain([list(job.columns)], rows), job)
        return Response(200, body, headers, content_type="text/csv")


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def _row(rec: Mapping[str, Any], columns: tuple[str, ...]) -> list[str]:
    out = []
    for column in columns:
        value: Any = rec
        for part in column.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        out.append(to_csv(value))
    return out


def _count(job: QueryJob) -> None:
    started = time.monotonic()
    job.set_state("InProgress")
    try:
        _, records = job.run()
        n = 0
        for _ in records:
            n += 1
            if job.state == "Aborted":
                return
    except Exception as exc:  # a failed query job reports its error, like Salesforce's
        job.error_message = str(exc)
        job.set_state("Failed")
        return
    job.processed = n
    job.processing_ms = int((time.monotonic() - started) * 1000)
    job.set_state("JobComplete")
