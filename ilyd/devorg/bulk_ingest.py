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
from ilyd.devorg.dml import WriteOp, save
from ilyd.devorg.rest import V, context, parse_json_body, resolve_object
from ilyd.devorg.web import ApiError, Request, Response, Router, json_response

if TYPE_CHECKING:
    from ilyd.devorg.app import DevOrg

BATCH_RECORDS = 10_000
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
            return json_response({"done": True, "records": [
                j.info() for j in self.jobs.list(org, IngestJob)],  # type: ignore[attr-defined]
                "nextRecordsUrl": None})
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
        (job.workdir / "data.csv").write_bytes(request.body)
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


def _stream(path: Path) -> Any:
    with path.open("rb") as fh:
        while chunk := fh.read(256 * 1024):
            yield chunk


def _reader(job: IngestJob, fh: IO[str]) -> Any:
    return csv.reader(fh, delimiter=DELIMITERS[job.column_delimiter])


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


def _op(job: IngestJob, header: list[str], row: list[str]) -> WriteOp:
    values: dict[str, object] = {}
    record_id = None
    ext_value = None
    for name, raw in zip(header, row, strict=False):
        if name.lower() == "id":
            record_id = raw or None
        if job.external_id and name.lower() == job.external_id.lower():
            ext_value = raw
        if raw == "" or "." in name:  # empty = unchanged; relationship columns unsupported
            continue
        values[name] = None if raw == "#N/A" else raw
    if job.operation == "insert":
        return WriteOp("create", job.object, values=values, from_csv=True)
    if job.operation in ("delete", "hardDelete"):
        return WriteOp("delete", job.object, record_id)
    if job.operation == "update":
        return WriteOp("update", job.object, record_id or "", values, from_csv=True)
    return WriteOp("upsert", job.object, values=values, from_csv=True,
                   ext_field=job.external_id, ext_value=ext_value)


def process(job: IngestJob) -> None:
    """Run an uploaded job to completion (worker thread)."""
    started = time.monotonic()
    data = job.workdir / "data.csv"
    if not data.exists():
        job.error_message = "InvalidBatch : No data was uploaded for this job"
        job.set_state("Failed")
        return
    job.set_state("InProgress")
    ok_fh, ok = _writer(job, job.workdir / "successfulresults.csv")
    bad_fh, bad = _writer(job, job.workdir / "failedresults.csv")
    done_rows = 0
    with data.open(newline="", encoding="utf-8-sig") as src, ok_fh, bad_fh:
        rows = _reader(job, src)
        header = next(rows, [])
        problem = _check_header(job, header)
        if problem:
            job.error_message = problem
            job.set_state("Failed")
            return
        ok.writerow(["sf__Id", "sf__Created", *header])
        bad.writerow(["sf__Id", "sf__Error", *header])
        while batch := list(itertools.islice(rows, BATCH_RECORDS)):
            if job.abort.is_set():
                break
            job.org.bulk_batches_used += 1
            ops = [_op(job, header, row) for row in batch]
            results = save(job.org, job.user_id, ops)
            for row, result in zip(batch, results, strict=True):
                if result.success:
                    ok.writerow([result.id, "true" if result.created else "false", *row])
                else:
                    err = result.errors[0]
                    bad.writerow([result.id or "", f"{err.status_code}:{err.message}:"
                                  f"{','.join(err.fields)} --", *row])
                    job.failed += 1
            done_rows += len(batch)
            job.processed = done_rows
            job.processing_ms = int((time.monotonic() - started) * 1000)
    if job.abort.is_set():
        _write_unprocessed(job, done_rows)
        return
    job.set_state("JobComplete")


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
