"""What Bulk API 2.0 ingest and query jobs share: the job registry, CSV dialects, job
info JSON and Salesforce's job errors."""

from __future__ import annotations

import csv
import io
import shutil
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ilyd.devorg.org import OrgState
from ilyd.devorg.values import format_datetime, now
from ilyd.devorg.web import ApiError

DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^",
              "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
TERMINAL = frozenset({"JobComplete", "Failed", "Aborted"})


@dataclass
class Job:
    """State common to ingest and query jobs."""

    id: str
    org: OrgState
    user_id: str
    operation: str
    object: str
    api_version: str
    column_delimiter: str = "COMMA"
    line_ending: str = "LF"
    state: str = "Open"
    created: Any = field(default_factory=now)
    modstamp: Any = field(default_factory=now)
    processed: int = 0
    failed: int = 0
    error_message: str | None = None
    processing_ms: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set_state(self, state: str) -> None:
        """Move to a new state and bump systemModstamp."""
        self.state = state
        self.modstamp = now()

    def base_info(self, job_type: str) -> dict[str, object]:
        """JobInfo fields shared by both job kinds."""
        return {
            "id": self.id, "operation": self.operation, "object": self.object,
            "createdById": self.user_id, "createdDate": format_datetime(self.created),
            "systemModstamp": format_datetime(self.modstamp), "state": self.state,
            "concurrencyMode": "Parallel", "contentType": "CSV",
            "apiVersion": float(self.api_version), "jobType": job_type,
            "lineEnding": self.line_ending, "columnDelimiter": self.column_delimiter,
        }


class JobRegistry:
    """Jobs by id, shared by every org of a DevOrg; a job is visible only to its org."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def add(self, job: Job) -> None:
        """Register a new job."""
        with self._lock:
            self._jobs[job.id] = job

    def get(self, org: OrgState, job_id: str, kind: type[Job]) -> Job:
        """A job of this org and kind, or Salesforce's 404."""
        job = self._jobs.get(job_id)
        if job is None or job.org is not org or not isinstance(job, kind):
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        return job

    def remove(self, job_id: str) -> None:
        """Forget a job."""
        with self._lock:
            self._jobs.pop(job_id, None)

    def close(self) -> None:
        """Delete every job's spool files (uploads, results); devorg is stopping."""
        with self._lock:
            jobs = list(self._jobs.values())
            self._jobs.clear()
        for job in jobs:
            workdir = getattr(job, "workdir", None)
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)

    def listing(self, org: OrgState, kind: type[Job]) -> dict[str, Any]:
        """The body of `GET /jobs/ingest` or `/jobs/query`: this org's jobs of one kind."""
        return {"done": True, "records": [j.info() for j in self.list(org, kind)],  # type: ignore[attr-defined]
                "nextRecordsUrl": None}

    def list(self, org: OrgState, kind: type[Job]) -> list[Job]:
        """This org's jobs of one kind, oldest first."""
        with self._lock:
            return [j for j in self._jobs.values() if j.org is org and isinstance(j, kind)]


def dialect(body: dict[str, Any]) -> tuple[str, str]:
    """Validated (columnDelimiter, lineEnding) of a job request."""
    delimiter = str(body.get("columnDelimiter") or "COMMA")
    ending = str(body.get("lineEnding") or "LF")
    if delimiter not in DELIMITERS:
        raise ApiError(400, "INVALIDJOB", f"Invalid column delimiter: {delimiter}")
    if ending not in LINE_ENDINGS:
        raise ApiError(400, "INVALIDJOB", f"Invalid line ending: {ending}")
    if str(body.get("contentType") or "CSV") != "CSV":
        raise ApiError(400, "INVALIDJOB", f"Invalid content type: {body.get('contentType')}")
    return delimiter, ending


def csv_lines(rows: Iterable[list[str]], job: Job) -> Iterator[bytes]:
    """Encode rows as CSV in the job's dialect, in chunks for a streamed response."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=DELIMITERS[job.column_delimiter],
                        lineterminator=LINE_ENDINGS[job.line_ending], quoting=csv.QUOTE_MINIMAL)
    for n, row in enumerate(rows, 1):
        writer.writerow(row)
        if n % 1000 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    tail = buffer.getvalue()
    if tail:
        yield tail.encode()
