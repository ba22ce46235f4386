"""The state database: one SQLite file in WAL mode, shared by many threads.

Each thread gets its own connection (sqlite3 connections must not be shared across
threads while a transaction is open). Components create their tables through
`Database.migrate`, which records a schema version per component so that upgrades run
once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import structlog

from ilyd.errors import StoreError

log = structlog.get_logger(__name__)

# A writer waits this long for another process's transaction (SQLite's busy handler).
_BUSY_TIMEOUT_SECONDS = 30.0
# ...and this long for another thread of this process: queueing here is fair, so a long
# wait means a transaction is stuck, not that the writer was unlucky.
_WRITE_LOCK_TIMEOUT_SECONDS = 120.0
# With background checkpoints, a commit still checkpoints itself past this many WAL pages
# (~40 MiB): only if the checkpointer falls that far behind.
_FALLBACK_AUTOCHECKPOINT_PAGES = 10_000


class _Connection(sqlite3.Connection):
    """sqlite3's connection, which a `weakref.WeakSet` can hold (the base type cannot)."""


class _Held:
    """A thread's connection in its thread-local storage: closed when the thread ends and
    the storage goes. Left to itself, the connection would wait for the cyclic garbage
    collector (sqlite3 keeps it in reference cycles), open — its file descriptors and its
    page cache, some hundreds of KiB — meanwhile."""

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __del__(self) -> None:
        # Already closed (Database.close), or an interpreter shutting down: nothing left.
        with contextlib.suppress(Exception):
            self.conn.close()


class Database:
    """A SQLite database file opened in WAL mode, one connection per thread."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._lock = threading.Lock()
        # Writers of this process queue here rather than in SQLite's busy handler, which
        # polls with sleeps and is unfair: with a hundred orgs' threads writing, a writer
        # could lose every retry for the whole busy timeout ("database is locked") while
        # the lock was free most of the time. Re-entrant, so a nested transaction still
        # gets SQLite's own error rather than a deadlock.
        self._write_lock = threading.RLock()
        # Held weakly: a thread that ends (an org restarted, an idle write thread) closes
        # its connection (`_Held`); held here, each would stay open for the daemon's life.
        self._connections: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._checkpointer: threading.Thread | None = None
        self._stop_checkpoints = threading.Event()
        self.checkpoints = 0  # background checkpoints run (for tests and benchmarks)
        self._commits = 0  # transactions committed: no checkpoint while it stays put
        # (component, steps) this instance brought up to date: every org's stores ask at
        # their start, and a thousand orgs asking again cost a write transaction each.
        self._migrated: set[tuple[str, int]] = set()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self.connection()
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_versions"
                " (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
        except (OSError, sqlite3.Error) as exc:
            raise state_error(self.path, "open", exc) from exc

    def connection(self) -> sqlite3.Connection:
        """Return this thread's connection, opening it on first use."""
        held: _Held | None = getattr(self._local, "held", None)
        if held is not None:
            return held.conn
        conn = sqlite3.connect(
            self.path, timeout=_BUSY_TIMEOUT_SECONDS, isolation_level=None,
            check_same_thread=False, factory=_Connection,
        )
        conn.row_factory = sqlite3.Row
        # NORMAL is durable in WAL mode against process crashes (SIGKILL); only an OS
        # crash can lose the last transactions.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        if self._checkpointer is not None:
            conn.execute(f"PRAGMA wal_autocheckpoint={_FALLBACK_AUTOCHECKPOINT_PAGES}")
        self._local.held = _Held(conn)
        with self._lock:
            self._connections.add(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one IMMEDIATE transaction; commit on success, roll back on error."""
        conn = self.connection()
        if not self._write_lock.acquire(timeout=_WRITE_LOCK_TIMEOUT_SECONDS):
            raise StoreError(f"cannot start a transaction on {self.path}: another thread held"
                             f" the write lock for {_WRITE_LOCK_TIMEOUT_SECONDS:g} s")
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise state_error(self.path, "start a transaction on", exc) from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                # SQLite has already rolled back after some errors (a full disk, an I/O
                # error): a second ROLLBACK would only hide the first error.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise state_error(self.path, "write", exc) from exc
                raise
            self._commits += 1  # under the write lock
        finally:
            self._write_lock.release()

    @contextmanager
    def joined(self, conn: sqlite3.Connection | None) -> Iterator[sqlite3.Connection]:
        """`conn` when given (the caller's open transaction, which this block joins), else
        a transaction of its own: lets a caller commit several stores' writes at once."""
        if conn is not None:
            yield conn
            return
        with self.transaction() as tx:
            yield tx

    def migrate(self, component: str, steps: Sequence[str]) -> None:
        """Apply the component's schema steps not applied yet (step i brings version i+1).

        A step is SQL statements separated by `;` (no `;` inside a statement).
        """
        if (component, len(steps)) in self._migrated:
            return
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT version FROM schema_versions WHERE component = ?", (component,)
            ).fetchone()
            current = row["version"] if row else 0
            if current > len(steps):
                raise StoreError(
                    f"state file {self.path} was written by a newer ilyd ({component} schema"
                    f" version {current}; this ilyd knows up to {len(steps)}): run that newer"
                    " ilyd again, or restore a backup made by this version"
                    " (ilyd state backup)")
            for step in steps[current:]:
                for statement in filter(None, (s.strip() for s in step.split(";"))):
                    conn.execute(statement)
            if len(steps) > current:
                conn.execute(
                    "INSERT INTO schema_versions(component, version) VALUES (?, ?)"
                    " ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                    (component, len(steps)),
                )
        self._migrated.add((component, len(steps)))

    def checkpoint_in_background(self, interval: float = 1.0) -> None:
        """Copy the WAL into the database file from a thread of its own every `interval`
        seconds, instead of in whichever commit crossed SQLite's threshold: that commit
        held the write lock through the checkpoint's fsync (hundreds of milliseconds on
        a busy disk) while every other writer waited. Call before other threads use the
        database; `close` stops it."""
        if self._checkpointer is not None:
            return
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, args=(interval,),
                                              name="ilyd-checkpoint", daemon=True)
        self.connection().execute(f"PRAGMA wal_autocheckpoint={_FALLBACK_AUTOCHECKPOINT_PAGES}")
        self._checkpointer.start()

    def _checkpoint_loop(self, interval: float) -> None:
        seen = -1
        while not self._stop_checkpoints.wait(interval):
            if self._commits == seen:
                continue  # nothing written since the last one (an idle daemon)
            seen = self._commits
            try:
                # PASSIVE: copies what it can without waiting for readers or writers.
                self.connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                self.checkpoints += 1
            except sqlite3.Error as exc:
                log.warning("state_checkpoint_failed", path=str(self.path),
                            error=str(state_error(self.path, "checkpoint", exc)))

    def close(self) -> None:
        """Close every connection opened by any thread."""
        self._stop_checkpoints.set()
        if self._checkpointer is not None and self._checkpointer is not threading.current_thread():
            self._checkpointer.join(timeout=10)
        with self._lock:
            for conn in list(self._connections):
                conn.close()
            self._connections.clear()
        self._local = threading.local()


# What each way a state file fails means to an operator, by the words of SQLite's error
# (https://www.sqlite.org/rescode.html): SQLITE_FULL, SQLITE_READONLY, SQLITE_CORRUPT /
# SQLITE_NOTADB, SQLITE_IOERR, SQLITE_CANTOPEN.
_FIXES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("disk is full", "disk full"),
     "the filesystem holding {dir} is full: free space there; a running ilyd retries by"
     " itself, no restart needed, and nothing stored is lost"),
    (("readonly", "read-only"),
     "{dir} is read-only for the ilyd user: make it writable again (remount read-write,"
     " or chown/chmod the state directory); a running ilyd retries by itself"),
    (("malformed", "not a database", "corrupt"),
     "the file is damaged: stop ilyd, run `ilyd state check`, then restore the file from"
     " a backup (`ilyd state backup`) or move it aside to start with empty state"),
    (("unable to open",),
     "check that {dir} exists and is writable by the ilyd user"),
    (("disk i/o error",),
     "the disk under {dir} failed a read or write: check the kernel log (dmesg) and the"
     " filesystem; a running ilyd retries by itself"),
)


def state_error(path: Path, action: str, exc: BaseException) -> StoreError:
    """A StoreError that names the state file, what failed, and what the operator does."""
    text = str(exc)
    lowered = text.lower()
    fix = next((f for words, f in _FIXES if any(w in lowered for w in words)),
               "check that {dir} exists and is writable by the ilyd user")
    return StoreError(f"cannot {action} state file {path}: {text}; "
                      + fix.format(dir=path.parent))


# Parameters per statement of `execute_values` (and other many-row statements): far under
# SQLite's limit (32,766 since 3.32, 999 before), and a statement per few hundred rows is
# already cheap.
MAX_PARAMETERS = 900


def execute_values(conn: sqlite3.Connection, head: str, rows: Sequence[Sequence[object]],
                   tail: str = "") -> None:
    """Run `head VALUES (…), (…), … tail` for `rows` in as few statements as fit.

    One statement steps once: the GIL is given up once per statement rather than once per
    row (`executemany`), and under contention each of those is a wait for it while the
    database's write lock is held.
    """
    if not rows:
        return
    width = len(rows[0])
    per = max(1, MAX_PARAMETERS // width)
    group = "(" + ", ".join(["?"] * width) + ")"
    for at in range(0, len(rows), per):
        chunk = rows[at:at + per]
        conn.execute(f"{head} VALUES {', '.join([group] * len(chunk))} {tail}",
                     [value for row in chunk for value in row])


def lock_state_dir(state_dir: Path, name: str = "ilyd.lock", wait: float = 0.0) -> IO[str]:
    """Hold the state directory for this daemon until the returned file is closed (or the
    process ends): a second daemon on the same directory — with another control socket —
    stops here. The inbox's leases live in the daemon's memory, so two daemons would
    claim the same rows. Commands such as `ilyd check` do not take it.

    A worker process holds its own state file's lock (`name`) the same way, `wait`ing
    for the previous one — of a front killed a moment ago — to have gone."""
    path = state_dir / name
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+", encoding="utf-8")
    except OSError as exc:
        raise state_error(path, "open", exc) from exc
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise StoreError(f"another ilyd daemon (pid {holder}) uses the state directory"
                         f" {state_dir}; stop it, or give this one its own state_dir") from None
    except OSError as exc:
        handle.close()
        raise StoreError(f"cannot lock the state directory {state_dir}: {exc}") from exc
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle
