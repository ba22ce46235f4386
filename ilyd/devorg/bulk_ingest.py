"""Bulk API 2.0 ingest jobs: insert, update, upsert, delete (hardDelete as delete).

The HTTP side: creating, closing, aborting and deleting jobs, the upload — spooled to a
temporary file as it arrives — and the result CSV files, served as they are. Processing
runs in a worker thread (`bulk_ingest_worker`), 10,000 records per batch (the unit of
the daily batch allowance), streaming — memory stays flat whatever the file size."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ilyd.devorg.bulk_ingest_worker import IngestJob, process, spooled_header, write_unprocessed
from ilyd.devorg.bulk_jobs import TERMINAL, JobRegistry, csv_lines, dialect
from ilyd.devorg.rest import V, context, parse_json_body, resolve_object
from ilyd.devorg.web import ApiError, Request, Response, Router, json_response

if TYPE_CHECKING:
    from ilyd.devorg.app import DevOrg

MAX_UPLOAD = 150 * 1024 * 1024
OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
J = V + r"/jobs/ingest"


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
            write_unprocessed(job, 0)
        if not path.exists():
            header = spooled_header(job)
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
