"""Running an uploaded Bulk API 2.0 ingest job (worker thread).

The spooled CSV is read row by row, each row turned into a WriteOp and saved 200 at a
time — Salesforce's chunk, each its own transaction — and the outcomes are spooled to the
job's successfulResults / failedResults files, so memory stays flat whatever the file
size. Every 10,000 rows count as one batch of the daily allowance. `bulk_ingest` serves
the HTTP side of the job (`IngestJob`, defined here).
"""

from __future__ import annotations

import csv
import itertools
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ilyd.devorg.bulk_jobs import DELIMITERS, LINE_ENDINGS, Job
from ilyd.devorg.dml import SaveResult, WriteOp, collections_paused, save

BATCH_RECORDS = 10_000
CHUNK_RECORDS = 200  # divides BATCH_RECORDS


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


def spooled_header(job: IngestJob) -> list[str]:
    """The uploaded CSV's header row ([] before anything is uploaded)."""
    data = job.workdir / "data.csv"
    if not data.exists():
        return []
    with data.open(newline="", encoding="utf-8-sig") as fh:
        return next(_reader(job, fh), [])


def _writer(job: IngestJob, path: Path) -> tuple[IO[str], Any]:
    fh = path.open("w", newline="", encoding="utf-8")
    return fh, csv.writer(fh, delimiter=DELIMITERS[job.column_delimiter],
                          lineterminator=LINE_ENDINGS[job.line_ending])


def write_unprocessed(job: IngestJob, skip: int) -> None:
    """Write unprocessedrecords.csv: the uploaded header and the rows after the first
    `skip` — the rows an aborted job did not reach (every row, for a job never run)."""
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
        write_unprocessed(job, done_rows)
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
