"""Bulk API 2.0 ingest jobs: insert, update, upsert, delete (hardDelete as delete).

The upload is spooled to a temporary file and processed in a worker thread, 10,000
records per batch (the unit of the daily batch allowance), streaming — memory stays flat
whatever the file size. Results are CSV files served as they are."""

from __future__ import annotations

import csv
import itertools
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ilyd.devorg.bulk_jobs import (
    DELIMITERS,
    LINE_ENDINGS,
    TERMINAL,
    Job,
    JobRegistry,
    csv_lines,
    dialect,
)
from ilyd.devorg.dml import SaveResult, WriteOp, collections_paused, save
from ilyd.devorg.rest import V, context, parse_json_body, resolve_object
from ilyd.devorg.web import ApiError, Request, Response, Router, json_response

if TYPE_CHECKING:
    from ilyd.devorg.app import DevOrg

BATCH_RECORDS = 10_000
CHUNK_RECORDS = 200  # divides BATCH_RECORDS
MAX_UPLOAD = 150 * 1024 * 1024
OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
J = V + r"/jobs/ingest"


@dataclass
class IngestJob(Job):
    """An ingest job and its spooled data and result files."""

    external_id: str | None = None
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="devorg-bulk-")))
    uploaded: bool = False
    abort: threading.Event = field(default_factory=threading.Event)

    def info(self) -> dict[str, object]:
        """JobInfo JSON."""
        out = self.base_info("V2Ingest")
        if self.external_id:
            out["externalIdFieldName"] = self.external_id
        out["contentUrl"] = f"services/data/v{self.api_version}/jobs/ingest/{self.id}/batches"
        out.update(numberRecordsProcessed=self.processed, numberRecordsFailed=self.failed,
                   retries=0, totalProcessingTime=self.processing_ms,
                   apiActiveProcessingTime=self.processing_ms, apexProcessingTime=0)
        if self.error_message:
            out["errorMessage"] = self.error_message
        return out


def register(router: Router, dev: DevOrg) -> None:
    """Add the ingest routes."""
    jobs: JobRegistry = dev.bulk_jobs  # type: ignore[attr-defined]
    api = IngestApi(jobs)
    router.add("POST GET", J, api.root, "jobs.ingest")
    router.add("GET PATCH DELETE", J + r"/(?P<job>750\w+)", api.job, "jobs.ingest.job")
    router.add("PUT", J + r"/(?P<job>750\w+)/batches", api.upload, "jobs.ingest.batches")
    router.add("GET", J + r"/(?P<job>750\w+)/(?P<kind>successfulResults|failedResults|"
               r"unprocessedrecords|unprocessedRecords)", api.results, "jobs.ingest.results")


class IngestApi:
    """Handlers for /jobs/ingest."""

    def __init__(self, jobs: JobRegistry) -> None:
        self.jobs = jobs

    def root(self, request: Request) -> Response:
        """POST creates a job; GET lists this org's jobs."""
        org, user_id, _ = context(request)
        if request.method == "GET":
            return json_response(self.jobs.listing(org, IngestJob))
        body = parse_json_body(request)
        operation = str(body.get("operation") or "")
        if operation not in OPERATIONS:
            raise ApiError(400, "INVALIDJOB", f"Invalid operation: {operation}")
        try:
            obj = resolve_object(request, str(body.get("object") or ""))
        except ApiError:
            raise ApiError(400, "INVALIDJOB",
                           f"Unable to find object: {body.get('object')}") from None
        external = body.get("externalIdFieldName")
        if operation == "upsert" and not external:
            raise ApiError(400, "INVALIDJOB", f"External ID was blank for {obj.name}. An "
                           "External ID must be specified for upsert.")
        delimiter, ending = dialect(body)
        job = IngestJob(org.ids.new("750"), org, user_id, operation, obj.name,
                        request.params["version"], delimiter, ending,
                        external_id=str(external) if external else None)
        self.jobs.add(job)
        return json_response(job.info())

    def job(self, request: Request) -> Response:
        """GET info, PATCH state (UploadComplete / Aborted), DELETE."""
        org, _, _ = context(request)
        job: IngestJob = self.jobs.get(org, request.params["job"], IngestJob)  # type: ignore[assignment]
        if request.method == "GET":
            return json_response(job.info())
        if request.method == "DELETE":
            if job.state not in TERMINAL | {"UploadComplete", "Open"}:
                raise ApiError(400, "INVALIDJOBSTATE", "Deleting an in-progress job is not "
                               "allowed")
            self.jobs.remove(job.id)
            shutil.rmtree(job.workdir, ignore_errors=True)
            return Response(204, b"", content_type=None)
        state = parse_json_body(request).get("state")
        with job.lock:
            if state == "Aborted":
                if job.state in TERMINAL:
                    raise ApiError(400, "INVALIDJOBSTATE",
                                   f"Job with ID {job.id} cannot be aborted in state {job.state}")
                job.abort.set()
                job.set_state("Aborted")
            elif state == "UploadComplete":
                if job.state != "Open":
                    raise ApiError(409, "INVALIDJOBSTATE",
                                   f"Job with ID {job.id} isn't in the Open state")
                job.set_state("UploadComplete")
                answer = job.info()  # the state as of this call, before the worker moves it
                threading.Thread(target=process, args=(job,), daemon=True,
                                 name=f"devorg-bulk-{job.id}").start()
                return json_response(answer)
            else:
                raise ApiError(400, "INVALIDJOBSTATE", f"Invalid state: {state}")
        return json_response(job.info())

    def upload(self, request: Request) -> Response:
        """PUT the CSV (spooled to disk as it arrives)."""
        org, _, _ = context(request)
        job: IngestJob = self.jobs.get(org, request.params["job"], IngestJob)  # type: ignore[assignment]
        with job.lock:
            if job.state != "Open" or job.uploaded:
                raise ApiError(409, "INVALIDJOBSTATE",
                               f"Job with ID {job.id} isn't in the Open state")
            job.uploaded = True
        _spool_upload(request, job.workdir / "data.csv")
        return Response(201, b"", content_type=None)

    def results(self, request: Request) -> Response:
        """successfulResults / failedResults / unprocessedrecords as CSV."""
        org, _, _ = context(request)
        job: IngestJob = self.jobs.get(org, request.params["job"], IngestJob)  # type: ignore[assignment]
        kind = request.params["kind"].lower()
        path = job.workdir / f"{kind}.csv"
        if kind == "unprocessedrecords" and job.state in ("Open", "Aborted") and \
                not path.exists():
            _write_unprocessed(job, 0)
        if not path.exists():
            header = _header(job)
            prefix = {"successfulresults": ["sf__Id", "sf__Created"],
                      "failedresults": ["sf__Id", "sf__Error"]}.get(kind, [])
            body = b"".join(csv_lines([prefix + header], job)) if header or prefix else b""
            return Response(200, body, content_type="text/csv")
        return Response(200, _stream(path), content_type="text/csv")


def _spool_upload(request: Request, path: Path) -> None:
    """Write the request body to `path` as it arrives, never whole in memory (an upload
    may be 150 MB). Chunked bodies, and bodies already read, go through `request.body`."""
    handler = request.raw
    length = request.headers.get("Content-Length")
    chunked = request.headers.get("Transfer-Encoding", "").lower() == "chunked"
    if request._body is not None or chunked or handler is None or not length or \
            int(length) > MAX_UPLOAD:
        path.write_bytes(request.body)
        return
    remaining = int(length)
    with path.open("wb") as out:
        while remaining:
            chunk = handler.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                raise ApiError(400, "InvalidBatch", "The upload ended before its length")
            out.write(chunk)
            remaining -= len(chunk)
    request._body = b""  # consumed: the server must not drain it again


def _stream(path: Path) -> Any:
    with path.open("rb") as fh:
        while chunk := fh.read(256 * 1024):
            yield chunk


def _reader(job: IngestJob, fh: IO[str]) -> Any:
    return csv.reader(fh, delimiter=DELIMITERS[job.column_delimiter])


def _records(fh: IO[str], delimiter: str) -> _Rows:
    """Parse CSV records: (fields, the line itself) for a plain line — no quotes, so a
    split is the whole parse and the line can be echoed into the results as is — and
    (fields, None) for the rest, which the csv module parses (quoted fields may span
    lines: it reads on from the same file). Blank lines give [] as csv.reader does."""
    for line in fh:
        body = line.rstrip("\r\n")
        if body and '"' not in body:
            yield body.split(delimiter), body
            continue
        row = next(csv.reader(itertools.chain((line,), fh), delimiter=delimiter), None)
        if row is None:
            return
        yield row, None


def _header(job: IngestJob) -> list[str]:
    data = job.workdir / "data.csv"
    if not data.exists():
        return []
    with data.open(newline="", encoding="utf-8-sig") as fh:
        return next(_reader(job, fh), [])


def _writer(job: IngestJob, path: Path) -> tuple[IO[str], Any]:
    fh = path.open("w", newline="", encoding="utf-8")
    return fh, csv.writer(fh, delimiter=DELIMITERS[job.column_delimiter],
                          lineterminator=LINE_ENDINGS[job.line_ending])


def _write_unprocessed(job: IngestJob, skip: int) -> None:
    data = job.workdir / "data.csv"
    fh, writer = _writer(job, job.workdir / "unprocessedrecords.csv")
    with fh:
        if data.exists():
            with data.open(newline="", encoding="utf-8-sig") as src:
                rows = _reader(job, src)
                header = next(rows, None)
                if header:
                    writer.writerow(header)
                    writer.writerows(itertools.islice(rows, skip, None))


_Rows = Iterator[tuple[list[str], str | None]]


class _Columns:
    """How the header's columns map onto a WriteOp, worked out once per job."""

    def __init__(self, job: IngestJob, header: list[str]) -> None:
        self.job = job
        lowered = [name.lower() for name in header]
        self.id_at = max((i for i, n in enumerate(lowered) if n == "id"), default=None)
        ext = job.external_id.lower() if job.external_id else None
        self.ext_at = max((i for i, n in enumerate(lowered) if n == ext), default=None)
        # relationship columns (Owner.Email) are not written: None skips them
        self.names = [None if "." in name else name for name in header]
        self.dotted = any(name is None for name in self.names)

    def op(self, row: list[str]) -> WriteOp:
        """The write one CSV row asks for: empty = unchanged, #N/A = null."""
        job = self.job
        if self.dotted:
            values = {n: None if r == "#N/A" else r for n, r in zip(self.names, row, strict=False)
                      if r != "" and n is not None}
        else:
            values = {n: None if r == "#N/A" else r for n, r in zip(self.names, row, strict=False)
                      if r != ""}
        operation = job.operation
        if operation == "update":
            at = self.id_at
            record_id = row[at] if at is not None and at < len(row) else ""
            return WriteOp("update", job.object, record_id or "", values, from_csv=True)
        if operation == "insert":
            return WriteOp("create", job.object, values=values, from_csv=True)
        if operation in ("delete", "hardDelete"):
            at = self.id_at
            record_id = row[at] if at is not None and at < len(row) else None
            return WriteOp("delete", job.object, record_id or None)
        at = self.ext_at
        ext_value = row[at] if at is not None and at < len(row) else None
        return WriteOp("upsert", job.object, values=values, from_csv=True,
                       ext_field=job.external_id, ext_value=ext_value)


def process(job: IngestJob) -> None:
    """Run an uploaded job to completion (worker thread).

    Rows are read, written and their results spooled 200 at a time — Salesforce's chunk,
    each its own transaction — so memory stays flat and the org's lock is never held
    for long; every 10,000 rows count as one batch of the daily allowance."""
    started = time.monotonic()
    data = job.workdir / "data.csv"
    if not data.exists():
        job.error_message = "InvalidBatch : No data was uploaded for this job"
        job.set_state("Failed")
        return
    job.set_state("InProgress")
    done_rows = 0
    with data.open(newline="", encoding="utf-8-sig") as src:
        rows = _records(src, DELIMITERS[job.column_delimiter])
        header = next(rows, ([], None))[0]
        problem = _check_header(job, header)
        if problem:
            for name in ("successfulresults.csv", "failedresults.csv"):
                (job.workdir / name).touch()  # empty results, as before any row is read
            job.error_message = problem
            job.set_state("Failed")
            return
        spool = _Results(job, header)
        columns = _Columns(job, header)
        try:
            while True:
                if done_rows % BATCH_RECORDS == 0:  # a new batch starts (or the job is done)
                    job.processed = done_rows
                    job.processing_ms = int((time.monotonic() - started) * 1000)
                    if job.abort.is_set():
                        break
                with collections_paused():
                    done = _run_chunk(job, columns, rows, spool)
                if not done:
                    break
                if done_rows % BATCH_RECORDS == 0:  # the first chunk of a batch
                    job.org.bulk_batches_used += 1
                done_rows += done
        finally:
            spool.close()
        job.processed = done_rows
        job.processing_ms = int((time.monotonic() - started) * 1000)
    if job.abort.is_set():
        _write_unprocessed(job, done_rows)
        return
    job.set_state("JobComplete")


class _Results:
    """The job's successfulResults and failedResults files, written as rows are saved."""

    def __init__(self, job: IngestJob, header: list[str]) -> None:
        self.job = job
        self.delimiter = DELIMITERS[job.column_delimiter]
        self.ending = LINE_ENDINGS[job.line_ending]
        self.ok_fh, self.ok = _writer(job, job.workdir / "successfulresults.csv")
        self.bad_fh, self.bad = _writer(job, job.workdir / "failedresults.csv")
        self.ok.writerow(["sf__Id", "sf__Created", *header])
        self.bad.writerow(["sf__Id", "sf__Error", *header])

    def close(self) -> None:
        """Flush and close both files."""
        self.ok_fh.close()
        self.bad_fh.close()

    def write(self, chunk: list[tuple[list[str], str | None]], results: list[SaveResult]
              ) -> None:
        """Spool one chunk's outcomes."""
        d, ending = self.delimiter, self.ending
        succeeded: list[str] = []
        for (row, line), result in zip(chunk, results, strict=True):
            if result.success:
                created = "true" if result.created else "false"
                if line is not None:  # the row as uploaded is already valid CSV
                    succeeded.append(f"{result.id}{d}{created}{d}{line}{ending}")
                else:
                    self.ok_fh.write("".join(succeeded))
                    succeeded.clear()
                    self.ok.writerow([result.id, created, *row])
            else:
                err = result.errors[0]
                self.bad.writerow([result.id or "", f"{err.status_code}:{err.message}:"
                                   f"{','.join(err.fields)} --", *row])
                self.job.failed += 1
        self.ok_fh.write("".join(succeeded))


def _run_chunk(job: IngestJob, columns: _Columns, rows: _Rows, spool: _Results) -> int:
    """Save the next chunk of rows and spool their results; returns how many there were."""
    chunk = list(itertools.islice(rows, CHUNK_RECORDS))
    if chunk:
        spool.write(chunk, save(job.org, job.user_id, [columns.op(row) for row, _ in chunk]))
    return len(chunk)


def _check_header(job: IngestJob, header: list[str]) -> str | None:
    if not header:
        return "InvalidBatch : Failed to parse CSV header"
    obj = job.org.object_def(job.object)
    assert obj is not None
    access = job.org.access(job.user_id)
    for name in header:
        if "." in name:
            continue
        f = obj.field_map.get(name.lower())
        if f is None or not access.field_readable(obj, f):
            return f"InvalidBatch : Field name not found : {name}"
    if job.operation in ("update", "delete", "hardDelete") and \
            not any(h.lower() == "id" for h in header):
        return "InvalidBatch : Field name not found : Id"
    return None
