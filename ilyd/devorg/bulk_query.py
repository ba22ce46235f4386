"""Bulk API 2.0 query jobs: the query runs in a worker thread when the job is created and
its result is written, as CSV, to a temporary file — the snapshot Salesforce takes when the
job completes, so records written after JobComplete never show in its pages. Pages
(`maxRecords`, `Sforce-Locator`) are byte ranges of that file, streamed back: a million-row
result costs disk, not memory."""

from __future__ import annotations

import csv
import io
import itertools
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ilyd.devorg import soql
from ilyd.devorg.bulk_jobs import DELIMITERS, LINE_ENDINGS, TERMINAL, Job, JobRegistry, dialect
from ilyd.devorg.query_schema import OrgSchema, OrgSource
from ilyd.devorg.rest import V, context, parse_json_body
from ilyd.devorg.values import to_csv
from ilyd.devorg.web import ApiError, Request, Response, Router, json_response

if TYPE_CHECKING:
    from ilyd.devorg.app import DevOrg

J = V + r"/jobs/query"
DEFAULT_PAGE = 50_000


MARK_ROWS = 1_000  # the result file's byte offset is kept every this many rows
_CHUNK = 256 * 1024


@dataclass
class QueryJob(Job):
    """A query job, its result file and where its pages start."""

    query: str = ""
    columns: tuple[str, ...] = ()
    workdir: Path | None = None
    # byte offset of rows 0, MARK_ROWS, 2 * MARK_ROWS, …: a page's start is found by
    # reading on from the mark before it (a thousand marks for a million rows)
    marks: list[int] = field(default_factory=list)
    size: int = 0  # bytes of result rows in the file
    cursor: tuple[int, int] | None = None  # (row, byte offset) where the last page ended
    abort: threading.Event = field(default_factory=threading.Event)

    def info(self) -> dict[str, object]:
        """JobInfo JSON."""
        out = self.base_info("V2Query")
        out.update(numberRecordsProcessed=self.processed, retries=0,
                   totalProcessingTime=self.processing_ms, isPkChunkingSupported=True)
        if self.error_message:
            out["errorMessage"] = self.error_message
        return out

    def run(self) -> tuple[tuple[str, ...], Iterator[Mapping[str, Any]]]:
        """Execute the query against the org as it is now: (columns, lazy records)."""
        all_rows = self.operation == "queryAll"
        result = soql.execute(soql.parse(self.query), OrgSchema(self.org, self.user_id),
                              OrgSource(self.org, all_rows=all_rows), all_rows=all_rows)
        return tuple(result.columns), iter(result.records)

    @property
    def result_path(self) -> Path:
        """The CSV file holding the result rows (no header)."""
        assert self.workdir is not None
        return self.workdir / "result.csv"

    def discard(self) -> None:
        """Delete the result file."""
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


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
            return json_response(self.jobs.listing(org, QueryJob))
        body = parse_json_body(request)
        operation = str(body.get("operation") or "query")
        if operation not in ("query", "queryAll"):
            raise ApiError(400, "INVALIDJOB", f"Invalid operation: {operation}")
        delimiter, ending = dialect(body)
        text = str(body.get("query") or "")
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
        threading.Thread(target=materialise, args=(job,), daemon=True,
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
            job.abort.set()
            job.discard()
            return Response(204, b"", content_type=None)
        if parse_json_body(request).get("state") != "Aborted" or job.state in TERMINAL:
            raise ApiError(400, "INVALIDJOBSTATE",
                           f"Job with ID {job.id} cannot be aborted in state {job.state}")
        job.abort.set()
        job.set_state("Aborted")
        return json_response(job.info())

    def results(self, request: Request) -> Response:
        """One page of CSV results; `Sforce-Locator` names the next one ("null": last)."""
        org, _, _ = context(request)
        job: QueryJob = self.jobs.get(org, request.params["job"], QueryJob)  # type: ignore[assignment]
        if job.state != "JobComplete":
            raise ApiError(400, "INVALIDJOBSTATE", f"Job with ID {job.id} isn't complete")
        locator = request.arg("locator") or ""
        offset = 0
        if locator and locator != "null":
            # A locator names a row inside this job's result: one at or past its end, or
            # not a locator at all, is refused, never served as a page of minus N rows.
            offset = int(locator, 36) if _LOCATOR.fullmatch(locator) else -1
            if not 0 < offset < job.processed:
                raise ApiError(400, "INVALIDLOCATOR", f"Invalid locator: {locator}")
        try:
            size = int(request.arg("maxRecords") or DEFAULT_PAGE)
        except ValueError:
            raise ApiError(400, "INVALIDPARAMETER", "maxRecords must be greater than 0"
                           ) from None
        if size <= 0:
            raise ApiError(400, "INVALIDPARAMETER", "maxRecords must be greater than 0")
        with job.lock:
            end = min(offset + size, job.processed)
            # opened here, not when the body is sent: a DELETE meanwhile cannot cut it short
            fh = job.result_path.open("rb")
            start_at = _seek_row(job, fh, offset)
            end_at = job.size if end >= job.processed else _find_row(job, fh, start_at,
                                                                     offset, end)
            job.cursor = (end, end_at)
        headers = {"Sforce-NumberOfRecords": str(end - offset),
                   "Sforce-Locator": _b36(end) if end < job.processed else "null"}
        return Response(200, _page(job, fh, start_at, end_at), headers,
                        content_type="text/csv")


def _seek_row(job: QueryJob, fh: IO[bytes], row: int) -> int:
    """The byte offset where result row `row` starts (the job's lock held)."""
    if row >= job.processed:
        return job.size
    if job.cursor is not None and job.cursor[0] == row:  # the next page of a sequential read
        return job.cursor[1]
    mark = row // MARK_ROWS
    return _skip(fh, job.marks[mark], row - mark * MARK_ROWS)


def _find_row(job: QueryJob, fh: IO[bytes], at: int, row: int, target: int) -> int:
    """Byte offset of row `target`, reading on from row `row` at byte `at` or from the
    last mark before `target`, whichever is nearer."""
    mark = target // MARK_ROWS
    if mark * MARK_ROWS > row:
        at, row = job.marks[mark], mark * MARK_ROWS
    return _skip(fh, at, target - row)


def _skip(fh: IO[bytes], at: int, rows: int) -> int:
    """The byte offset `rows` CSV records after `at`. A record ends at a line end outside
    quotes: quotes inside values come doubled, so an even count of them so far is enough."""
    fh.seek(at)
    quotes = 0
    while rows:
        line = fh.readline()
        if not line:
            break
        quotes += line.count(b'"')
        if not quotes & 1:
            rows -= 1
            quotes = 0
    return fh.tell()


def _page(job: QueryJob, fh: IO[bytes], start: int, end: int) -> Iterator[bytes]:
    """The header line, then the bytes [start, end) of the result file (closed after)."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=DELIMITERS[job.column_delimiter],
               lineterminator=LINE_ENDINGS[job.line_ending]).writerow(job.columns)
    yield buffer.getvalue().encode()
    with fh:
        fh.seek(start)
        left = end - start
        while left > 0:
            chunk = fh.read(min(left, _CHUNK))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


_LOCATOR = re.compile(r"[0-9a-z]{1,12}")


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def _getter(column: str) -> Callable[[Mapping[str, Any]], Any]:
    """Reads one result column of a record: a key, or a path through parent records."""
    if "." not in column:
        return lambda rec: rec.get(column)
    parts = column.split(".")

    def dotted(rec: Mapping[str, Any]) -> Any:
        value: Any = rec
        for part in parts:
            value = value.get(part) if isinstance(value, Mapping) else None
        return value
    return dotted


def _rows(records: Iterable[Mapping[str, Any]], columns: tuple[str, ...]
          ) -> Iterator[list[str]]:
    """Records as CSV fields; text (most values) goes as it is."""
    if all("." not in c for c in columns):
        for rec in records:
            get = rec.get
            yield [v if type(v) is str else to_csv(v) for v in [get(c) for c in columns]]
        return
    getters = [_getter(c) for c in columns]
    for rec in records:
        yield [v if type(v) is str else to_csv(v) for v in [g(rec) for g in getters]]


def materialise(job: QueryJob) -> None:
    """Run the query and write its result file (worker thread): the job's snapshot."""
    started = time.monotonic()
    job.set_state("InProgress")
    job.workdir = Path(tempfile.mkdtemp(prefix="devorg-query-"))
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=DELIMITERS[job.column_delimiter],
                        lineterminator=LINE_ENDINGS[job.line_ending])
    marks = [0]
    rows = 0
    size = 0
    try:
        columns, records = job.run()
        with job.result_path.open("wb") as out:
            lines = _rows(records, columns)
            while block := list(itertools.islice(lines, MARK_ROWS)):
                if job.abort.is_set():
                    job.discard()
                    return
                writer.writerows(block)
                data = buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
                out.write(data)
                size += len(data)
                rows += len(block)
                marks.append(size)
    except Exception as exc:  # a failed query job reports its error, like Salesforce's
        job.discard()
        job.error_message = str(exc)
        job.set_state("Failed")
        return
    with job.lock:
        if job.abort.is_set():
            job.discard()
            return
        job.marks, job.size, job.processed = marks, size, rows
        job.processing_ms = int((time.monotonic() - started) * 1000)
        job.set_state("JobComplete")
