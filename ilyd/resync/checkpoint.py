"""Resync checkpoints in the state database: what was read, what was sent, what settled.

The rule that makes a killed sync resume with no record skipped and none sent twice:
the unit of work is a *batch* — the result pages from `batch_locator` up to the page
before `next_locator`, whose changed records go into one ingest job. An ingest job is
recorded ("created", with the locator its batch ends at) before its CSV is uploaded;
once Salesforce has it closed, one transaction marks it "submitted", moves the object's
`batch_locator` on and adds the batch's counts. After a SIGKILL:

- a "created" job that Salesforce shows still Open never started: it is aborted and
  its batch is read, enriched and sent again;
- a "created" job that Salesforce shows closed (or further) was sent: its checkpoint
  is completed from the job row, nothing is re-sent;
- pages after `batch_locator` were never sent: they are read again.

Submitted jobs are "settled" once their failed rows are counted (or re-sent in a retry
job, recorded the same way with `parent` set).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from ilyd.store.db import Database

__all__ = ["IngestRecord", "IngestState", "ObjectCheckpoint", "ResyncRun", "ResyncStore",
           "RunState"]

_MIGRATIONS = (
    "CREATE TABLE resync_runs ("
    " org TEXT PRIMARY KEY, run_id TEXT NOT NULL, state TEXT NOT NULL,"
    " objects TEXT NOT NULL, since TEXT, started_at REAL NOT NULL, finished_at REAL,"
    " counts TEXT NOT NULL, failures TEXT NOT NULL, error TEXT);"
    "CREATE TABLE resync_objects ("
    " org TEXT NOT NULL, sobject TEXT NOT NULL, mode TEXT, total INTEGER,"
    " query_job TEXT, read_started REAL, read_started_sf TEXT,"
    " batch_locator TEXT, read_done INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (org, sobject));"
    "CREATE TABLE resync_ingest ("
    " job_id TEXT PRIMARY KEY, org TEXT NOT NULL, sobject TEXT NOT NULL,"
    " state TEXT NOT NULL, rows INTEGER NOT NULL, next_locator TEXT,"
    " read_done INTEGER NOT NULL DEFAULT 0, counts TEXT NOT NULL,"
    " parent TEXT, attempt INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);"
    "CREATE INDEX resync_ingest_by_org ON resync_ingest(org, state)",
    # A dry run's report file (NULL: a run that writes).
    "ALTER TABLE resync_runs ADD COLUMN report TEXT",
    # A refresh: only records whose Last Enriched is older than this moment (ISO 8601).
    "ALTER TABLE resync_runs ADD COLUMN stale_before TEXT",
)


class RunState(StrEnum):
    """Where a resync run stands."""

    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


class IngestState(StrEnum):
    """An ingest job as the checkpoint knows it."""

    CREATED = "created"  # exists in Salesforce; upload/close not known to be done
    SUBMITTED = "submitted"  # closed: Salesforce processes it
    SETTLED = "settled"  # its outcome is counted (failed rows retried or reported)


@dataclass
class ResyncRun:
    """The org's current (or last) resync run."""

    org: str
    run_id: str
    state: RunState
    objects: tuple[str, ...]
    since: str | None
    started_at: float
    finished_at: float | None = None
    counts: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    report: str | None = None  # a dry run: where its report goes
    stale_before: str | None = None  # a refresh: Last Enriched older than this


@dataclass(frozen=True)
class ObjectCheckpoint:
    """How far one object of the run got."""

    sobject: str
    mode: str | None  # "bulk" | "rest", None before the count
    total: int | None
    query_job: str | None
    read_started: float | None  # Unix time just before the read began
    read_started_sf: str | None  # the query job's createdDate (Salesforce's clock)
    batch_locator: str | None  # first page of the batch not yet submitted ("" = start)
    read_done: bool


@dataclass(frozen=True)
class IngestRecord:
    """One ingest job of the run."""

    job_id: str
    sobject: str
    state: IngestState
    rows: int
    next_locator: str | None
    read_done: bool
    counts: Mapping[str, int]
    parent: str | None
    attempt: int


class ResyncStore:
    """The resync tables. Thread-safe (one connection per thread).

    `kind` names a set of tables of the same shape: "resync" for the operator's
    `ilyd ctl resync`, "refresh" for the scheduled refresh, so each keeps its own run
    and checkpoint and neither forgets the other's when it begins.
    """

    def __init__(self, db: Database, kind: str = "resync") -> None:
        if kind not in ("resync", "refresh"):
            raise ValueError(f"unknown run kind {kind!r}")
        self._db = db
        self.kind = kind
        self._runs, self._objects, self._ingest = (
            f"{kind}_runs", f"{kind}_objects", f"{kind}_ingest")
        db.migrate(kind, tuple(step.replace("resync_", f"{kind}_") for step in _MIGRATIONS))

    # --- runs ---------------------------------------------------------------------------

    def begin(self, org: str, run_id: str, objects: tuple[str, ...], since: str | None,
              report: str | None = None, *, stale_before: str | None = None) -> None:
        """Start a new run, forgetting the org's previous one (`report`: a dry run's
        report file; `stale_before`: a refresh's cutoff)."""
        with self._db.transaction() as conn:
            for table in (self._runs, self._objects, self._ingest):
                conn.execute(f"DELETE FROM {table} WHERE org = ?", (org,))  # noqa: S608
            conn.execute(
                f"INSERT INTO {self._runs}(org, run_id, state, objects, since, started_at,"  # noqa: S608
                " counts, failures, report, stale_before)"
                " VALUES (?, ?, ?, ?, ?, ?, '{}', '{}', ?, ?)",
                (org, run_id, RunState.RUNNING, json.dumps(objects), since, time.time(),
                 report, stale_before),
            )
            conn.executemany(
                f"INSERT INTO {self._objects}(org, sobject) VALUES (?, ?)",  # noqa: S608
                [(org, sobject) for sobject in objects],
            )

    def run(self, org: str) -> ResyncRun | None:
        """The org's current or last run."""
        row = self._db.connection().execute(
            f"SELECT * FROM {self._runs} WHERE org = ?", (org,)).fetchone()  # noqa: S608
        if row is None:
            return None
        return ResyncRun(
            org=org, run_id=row["run_id"], state=RunState(row["state"]),
            objects=tuple(json.loads(row["objects"])), since=row["since"],
            started_at=row["started_at"], finished_at=row["finished_at"],
            counts=json.loads(row["counts"]), failures=json.loads(row["failures"]),
            error=row["error"], report=row["report"], stale_before=row["stale_before"],
        )

    def finish(self, org: str, state: RunState, error: str | None = None) -> None:
        """End the run (done, cancelled or failed)."""
        with self._db.transaction() as conn:
            conn.execute(f"UPDATE {self._runs} SET state = ?, finished_at = ?, error = ?"  # noqa: S608
                         " WHERE org = ?", (state, time.time(), error, org))

    def add_counts(self, org: str, counts: Mapping[str, int],
                   failures: Mapping[str, int] | None = None) -> None:
        """Add to the run's durable counts (outside a batch checkpoint)."""
        with self._db.transaction() as conn:
            self._add_counts(conn, org, counts, failures or {})

    def _add_counts(self, conn: object, org: str, counts: Mapping[str, int],
                    failures: Mapping[str, int]) -> None:
        row = conn.execute(  # type: ignore[attr-defined]
            f"SELECT counts, failures FROM {self._runs} WHERE org = ?",  # noqa: S608
            (org,)).fetchone()
        if row is None:
            return
        merged, failed = json.loads(row["counts"]), json.loads(row["failures"])
        for key, value in counts.items():
            merged[key] = merged.get(key, 0) + value
        for key, value in failures.items():
            failed[key] = failed.get(key, 0) + value
        conn.execute(  # type: ignore[attr-defined]
            f"UPDATE {self._runs} SET counts = ?, failures = ? WHERE org = ?",  # noqa: S608
            (json.dumps(merged), json.dumps(failed), org))

    # --- objects ------------------------------------------------------------------------

    def objects(self, org: str) -> list[ObjectCheckpoint]:
        """The run's objects and how far each got."""
        rows = self._db.connection().execute(
            f"SELECT * FROM {self._objects} WHERE org = ? ORDER BY rowid",  # noqa: S608
            (org,)).fetchall()
        return [ObjectCheckpoint(
            sobject=r["sobject"], mode=r["mode"], total=r["total"], query_job=r["query_job"],
            read_started=r["read_started"], read_started_sf=r["read_started_sf"],
            batch_locator=r["batch_locator"], read_done=bool(r["read_done"]),
        ) for r in rows]

    def set_object(self, org: str, sobject: str, **values: object) -> None:
        """Update columns of one object's checkpoint (mode, total, query_job, …)."""
        allowed = {"mode", "total", "query_job", "read_started", "read_started_sf",
                   "batch_locator", "read_done"}
        if not values or set(values) - allowed:
            raise ValueError(f"unknown checkpoint columns: {sorted(set(values) - allowed)}")
        sets = ", ".join(f"{k} = ?" for k in values)
        with self._db.transaction() as conn:
            # Column names come from `allowed` above; values are parameters.
            conn.execute(f"UPDATE {self._objects} SET {sets} WHERE org = ? AND sobject = ?",  # noqa: S608
                         (*values.values(), org, sobject))

    def advance(self, org: str, sobject: str, next_locator: str | None, read_done: bool,
                counts: Mapping[str, int]) -> None:
        """A batch with nothing to send: move `batch_locator` on and add its counts."""
        with self._db.transaction() as conn:
            conn.execute(f"UPDATE {self._objects} SET batch_locator = ?, read_done = ?"  # noqa: S608
                         " WHERE org = ? AND sobject = ?",
                         (next_locator or "", int(read_done), org, sobject))
            self._add_counts(conn, org, counts, {})

    def object_done(self, org: str, sobject: str, counts: Mapping[str, int]) -> None:
        """Mark an object read to the end with no job to send (its counts included)."""
        with self._db.transaction() as conn:
            conn.execute(f"UPDATE {self._objects} SET read_done = 1"  # noqa: S608
                         " WHERE org = ? AND sobject = ?", (org, sobject))
            self._add_counts(conn, org, counts, {})

    # --- ingest jobs --------------------------------------------------------------------

    def job_created(self, org: str, sobject: str, job_id: str, rows: int, *,
                    next_locator: str | None, read_done: bool, counts: Mapping[str, int],
                    parent: str | None = None, attempt: int = 0) -> None:
        """Record a job right after Salesforce created it, before its upload."""
        with self._db.transaction() as conn:
            conn.execute(
                f"INSERT INTO {self._ingest}(job_id, org, sobject, state, rows,"  # noqa: S608
                " next_locator,"
                " read_done, counts, parent, attempt, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, org, sobject, IngestState.CREATED, rows, next_locator,
                 int(read_done), json.dumps(dict(counts)), parent, attempt, time.time()))

    def job_submitted(self, org: str, job_id: str) -> None:
        """The job is closed in Salesforce: complete its batch's checkpoint atomically.

        A main job moves its object's `batch_locator` on (and marks the read done after
        the last page) and adds the batch's counts; a retry job settles its parent and
        adds the parent's counts.
        """
        with self._db.transaction() as conn:
            row = conn.execute(f"SELECT * FROM {self._ingest} WHERE job_id = ?",  # noqa: S608
                               (job_id,)).fetchone()
            if row is None or row["state"] != IngestState.CREATED:
                return
            conn.execute(f"UPDATE {self._ingest} SET state = ? WHERE job_id = ?",  # noqa: S608
                         (IngestState.SUBMITTED, job_id))
            counts = json.loads(row["counts"])
            failures = counts.pop("_failures", {})
            if row["parent"] is None:
                conn.execute(
                    f"UPDATE {self._objects} SET batch_locator = ?, read_done = ?"  # noqa: S608
                    " WHERE org = ? AND sobject = ?",
                    (row["next_locator"] or "", row["read_done"], org, row["sobject"]))
            else:
                conn.execute(f"UPDATE {self._ingest} SET state = ? WHERE job_id = ?",  # noqa: S608
                             (IngestState.SETTLED, row["parent"]))
            self._add_counts(conn, org, counts, failures)

    def job_dropped(self, job_id: str) -> None:
        """Forget a job that never got its data (aborted after a crash)."""
        with self._db.transaction() as conn:
            conn.execute(f"DELETE FROM {self._ingest} WHERE job_id = ?", (job_id,))  # noqa: S608

    def job_settled(self, org: str, job_id: str, counts: Mapping[str, int],
                    failures: Mapping[str, int]) -> None:
        """The job's outcome is counted and nothing of it needs re-sending."""
        with self._db.transaction() as conn:
            conn.execute(f"UPDATE {self._ingest} SET state = ?"  # noqa: S608
                         " WHERE job_id = ? AND state = ?",
                         (IngestState.SETTLED, job_id, IngestState.SUBMITTED))
            self._add_counts(conn, org, counts, failures)

    def jobs(self, org: str, state: IngestState | None = None) -> list[IngestRecord]:
        """The run's ingest jobs (in one state), oldest first."""
        sql = f"SELECT * FROM {self._ingest} WHERE org = ?"  # noqa: S608
        args: tuple[object, ...] = (org,)
        if state is not None:
            sql += " AND state = ?"
            args += (state,)
        rows = self._db.connection().execute(sql + " ORDER BY created_at, rowid",
                                             args).fetchall()
        return [IngestRecord(
            job_id=r["job_id"], sobject=r["sobject"], state=IngestState(r["state"]),
            rows=r["rows"], next_locator=r["next_locator"], read_done=bool(r["read_done"]),
            counts=json.loads(r["counts"]), parent=r["parent"], attempt=r["attempt"],
        ) for r in rows]
