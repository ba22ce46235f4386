"""Sending changed records: Bulk 2.0 ingest `update` jobs, checkpointed; failed rows
retried (row locks) or counted by reason.

`IngestSpool` collects one batch's rows on disk (CSV for Salesforce, plus each record's
value fingerprint for the shared hash store). `BulkWriter.submit` sends a spool as one
job, recording it in the checkpoint before the upload and completing the checkpoint
once Salesforce has it closed. `BulkWriter.settle` waits for the submitted jobs and
reads their failed and unprocessed rows.
"""

from __future__ import annotations

import csv
import io
import itertools
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO

import structlog

from ilyd.resync.budget import Budget
from ilyd.resync.checkpoint import IngestRecord, IngestState, ResyncStore
from ilyd.resync.compare import Prepared, csv_value
from ilyd.resync.pacing import wait_for_job
from ilyd.resync.progress import ResyncProgress
from ilyd.salesforce.bulk import BulkClient, JobState, PollPolicy
from ilyd.store.field_state import FieldStateStore
from ilyd.store.history import HistoryStore
from ilyd.store.record_hashes import RecordHashStore

__all__ = ["RETRYABLE", "BulkWriter", "IngestSpool"]

log = structlog.get_logger(__name__)

# Per-row failures worth another job: another writer held the record for a moment.
RETRYABLE = frozenset({"UNABLE_TO_LOCK_ROW"})
_SPOOL_IN_MEMORY = 4 * 1024 * 1024
_HASH_CHUNK = 20_000


def _line(values: Sequence[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue().encode("utf-8")


class IngestSpool:
    """One ingest job's CSV (header `Id` + Ily columns) and the rows' fingerprints
    (with the digests of the values written, for the overwrite policy)."""

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = ("Id", *columns)
        self.rows = 0
        self.data: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115
        self.data.write(_line(self.columns))
        self.hashes: IO[str] = tempfile.TemporaryFile("w+", encoding="ascii")  # noqa: SIM115

    @property
    def size(self) -> int:
        """Bytes of CSV so far."""
        return self.data.tell()

    def add(self, record_id: str, values: Mapping[str, object], fingerprint: str) -> None:
        """Append one record's new values."""
        self.data.write(_line([record_id, *(csv_value(values, c) for c in self.columns[1:])]))
        self.hashes.write(f"{record_id}\t{fingerprint}\n")
        self.rows += 1

    def add_prepared(self, record_id: str, prepared: Prepared, digests: str = "",
                     history: str = "") -> None:
        """Append one record's new values, CSV cells and fingerprint made in advance
        (a Salesforce Id never needs quoting), the values' digests and its history
        entry (JSON: neither holds a tab or a newline)."""
        self.data.write(record_id.encode("ascii") + prepared.csv_tail)
        self.hashes.write(f"{record_id}\t{prepared.fingerprint}\t{digests}\t{history}\n")
        self.rows += 1

    def add_raw(self, row: Mapping[str, str]) -> None:
        """Append a row read back from a job's result CSV (a retry)."""
        self.data.write(_line([row.get(c, "") for c in self.columns]))
        self.rows += 1

    def without(self, excluded: set[str]) -> IngestSpool:
        """A copy leaving out the records in `excluded` (this spool is closed)."""
        kept = IngestSpool(self.columns[1:])
        self.data.seek(0)
        reader = csv.reader(io.TextIOWrapper(self.data, encoding="utf-8", newline=""))
        next(reader)
        self.hashes.seek(0)
        for row, hash_line in zip(reader, self.hashes, strict=True):
            if row[0] not in excluded:
                kept.data.write(_line(row))
                kept.hashes.write(hash_line)
                kept.rows += 1
        self.close()
        return kept

    def fingerprints(self) -> Iterator[tuple[str, str]]:
        """(record id, fingerprint) of every row added with `add`."""
        self.hashes.seek(0)
        for line in self.hashes:
            record_id, _, fingerprint = line.rstrip("\n").partition("\t")
            yield record_id, fingerprint.partition("\t")[0]

    def digests(self) -> Iterator[tuple[str, str]]:
        """(record id, digests JSON) of every row added with `add_prepared`."""
        self.hashes.seek(0)
        for line in self.hashes:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 3 and parts[2]:
                yield parts[0], parts[2]

    def history(self) -> Iterator[tuple[str, str]]:
        """(record id, history entry JSON) of every row added with one."""
        self.hashes.seek(0)
        for line in self.hashes:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 4 and parts[3]:
                yield parts[0], parts[3]

    def close(self) -> None:
        """Delete the spool files."""
        self.data.close()
        self.hashes.close()


class BulkWriter:
    """Submits and settles one org's resync ingest jobs."""

    def __init__(self, org: str, bulk: BulkClient, *, store: ResyncStore,
                 hashes: RecordHashStore, budget: Budget, progress: ResyncProgress,
                 fields: FieldStateStore | None = None,
                 history: HistoryStore | None = None,
                 poll: PollPolicy,
                 lock_retries: int, lock_retry_delay: float,
                 sleep: Callable[[float], bool]) -> None:
        self.org = org
        self.bulk = bulk
        self.store = store
        self.hashes = hashes
        self.fields = fields
        self.history = history
        self.budget = budget
        self.progress = progress
        self.poll = poll
        self.lock_retries = lock_retries
        self.lock_retry_delay = lock_retry_delay
        self._sleep = sleep  # returns True when cancelled while sleeping
        self._closed: dict[str, float] = {}  # job id -> when it was closed (monotonic)

    def submit(self, sobject: str, spool: IngestSpool, *, next_locator: str | None,
               read_done: bool, counts: Mapping[str, object], parent: str | None = None,
               attempt: int = 0) -> str:
        """Send `spool` as one update job; return its id. The checkpoint is complete
        (batch or retry recorded as sent) when this returns."""
        self.budget.reserve_batches(spool.rows)
        self.budget.wait()
        job = self.bulk.create_ingest(sobject, "update")
        self.store.job_created(self.org, sobject, job.id, spool.rows, next_locator=next_locator,
                               read_done=read_done, counts=counts,  # type: ignore[arg-type]
                               parent=parent, attempt=attempt)
        self.bulk.upload(job.id, spool.data)
        self.bulk.close(job.id)
        self._closed[job.id] = time.monotonic()
        self.store.job_submitted(self.org, job.id)
        if parent is None:
            # In chunks (a transaction each): put_many lists its rows, and a job holds
            # up to half a million. A hash lost to a crash here only costs a later
            # real-time write that could have been skipped.
            fingerprints = spool.fingerprints()
            while chunk := list(itertools.islice(fingerprints, _HASH_CHUNK)):
                self.hashes.put_many(self.org, sobject, chunk, "resync")
            digests = spool.digests()
            while self.fields is not None and (
                    chunk := list(itertools.islice(digests, _HASH_CHUNK))):
                self.fields.remember(self.org, sobject, chunk)
            entries = spool.history()
            while self.history is not None and (
                    chunk := list(itertools.islice(entries, _HASH_CHUNK))):
                now = time.time()
                with self.history.db.transaction() as tx:
                    # The path `ilyd ctl history` shows: resync, or the scheduled refresh.
                    HistoryStore.insert_rows(tx, [(self.org, r, now, self.store.kind, e)
                                                  for r, e in chunk])
        log.info("resync_job_submitted", org=self.org, sobject=sobject, job_id=job.id,
                 rows=spool.rows, retry_of=parent)
        return job.id

    def _poll_sleep(self, seconds: float) -> None:
        if self._sleep(seconds):
            self.budget.check_cancel()

    def recover(self) -> None:
        """After a restart: complete or drop the jobs a crash left "created"."""
        for record in self.store.jobs(self.org, IngestState.CREATED):
            info = self.bulk.job("ingest", record.job_id)
            if info.state is JobState.OPEN:
                self.bulk.abort("ingest", record.job_id)
                self.store.job_dropped(record.job_id)
                log.info("resync_job_dropped", org=self.org, job_id=record.job_id)
            else:
                self.store.job_submitted(self.org, record.job_id)
                log.info("resync_job_recovered", org=self.org, job_id=record.job_id,
                         state=str(info.state))

    def settle(self) -> None:
        """Wait for every submitted job; count its rows; retry locked rows."""
        while True:
            pending = self.store.jobs(self.org, IngestState.SUBMITTED)
            if not pending:
                return
            for record in pending:
                self.budget.check_cancel()
                self._settle_one(record)

    def _settle_one(self, record: IngestRecord) -> None:
        info = wait_for_job(self.bulk, "ingest", record.job_id, self.poll, rows=record.rows,
                            started=self._closed.get(record.job_id), sleep=self._poll_sleep)
        failures: dict[str, int] = {}
        retry = IngestSpool(())
        failed_ids: list[str] = []
        columns: tuple[str, ...] | None = None
        if info.records_failed:
            for row in self.bulk.failed_results(record.job_id):
                if columns is None:
                    columns = tuple(c for c in row if not c.startswith("sf__"))
                    retry = IngestSpool(columns[1:])
                reason = (row.get("sf__Error") or "UNKNOWN").split(":", 1)[0]
                if reason in RETRYABLE and record.attempt < self.lock_retries:
                    retry.add_raw(row)
                else:
                    failures[reason] = failures.get(reason, 0) + 1
                    failed_ids.append(row.get("Id") or row.get("sf__Id") or "")
        unprocessed = 0
        if info.state is not JobState.JOB_COMPLETE:
            for row in self.bulk.unprocessed_records(record.job_id):
                if columns is None:
                    columns = tuple(row)
                    retry = IngestSpool(columns[1:])
                unprocessed += 1
                if record.attempt < self.lock_retries:
                    retry.add_raw(row)
                else:
                    failures["UNPROCESSED"] = failures.get("UNPROCESSED", 0) + 1
                    failed_ids.append(row.get("Id", ""))
        written = max(0, info.records_processed - info.records_failed)
        self.progress.add("written", written)
        self.progress.add_failures(failures)
        if failed_ids:
            self.hashes.forget(self.org, record.sobject, failed_ids)
            if self.fields is not None:
                self.fields.forget(self.org, record.sobject, failed_ids)
        try:
            if retry.rows:
                log.info("resync_retry", org=self.org, job_id=record.job_id, rows=retry.rows,
                         attempt=record.attempt + 1, unprocessed=unprocessed)
                if self._sleep(self.lock_retry_delay * (record.attempt + 1)):
                    self.budget.check_cancel()
                counts = {"written": written, "failed": sum(failures.values()),
                          "_failures": failures}
                self.submit(record.sobject, retry, next_locator=None, read_done=False,
                            counts=counts, parent=record.job_id, attempt=record.attempt + 1)
            else:
                self.store.job_settled(self.org, record.job_id,
                                       {"written": written, "failed": sum(failures.values())},
                                       failures)
        finally:
            retry.close()
        if failures:
            log.warning("resync_rows_failed", org=self.org, job_id=record.job_id,
                        reasons=failures, sample=failed_ids[:5])
