"""Database: the state file's background WAL checkpoints."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

from ilyd.store import Database
from tests.helpers.waiting import wait_until


def test_background_checkpoints_take_the_wal_off_the_writers(tmp_path: Path) -> None:
    db = Database(tmp_path / "ilyd.db")
    try:
        db.checkpoint_in_background(interval=0.05)
        # A commit checkpoints itself only far past SQLite's default of 1,000 pages.
        assert db.connection().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 10_000
        seen: list[int] = []
        worker = threading.Thread(target=lambda: seen.append(
            db.connection().execute("PRAGMA wal_autocheckpoint").fetchone()[0]))
        worker.start()
        worker.join(10)
        assert seen == [10_000]  # every thread's connection
        wait_until(lambda: db.checkpoints == 1, timeout=30,
                   what="the first checkpoint look (at start)")
        time.sleep(0.2)
        assert db.checkpoints == 1  # nothing committed since: no checkpoint
        with db.transaction() as tx:
            tx.execute("CREATE TABLE t (x TEXT)")
            tx.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 2_000)
        wait_until(lambda: db.checkpoints == 2, timeout=30, what="a background checkpoint")
        # Everything written is in the database file: a checkpoint now has nothing to copy.
        busy, log_frames, copied = db.connection().execute(
            "PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert (busy, log_frames) == (0, copied)
    finally:
        db.close()
    assert not any(t.name == "ilyd-checkpoint" for t in threading.enumerate())


def test_a_held_state_lock_is_refused_at_once_or_waited_for(tmp_path: Path) -> None:
    import pytest

    from ilyd.errors import StoreError
    from ilyd.store.db import lock_state_dir

    first = lock_state_dir(tmp_path, "ilyd.0-of-2.db.lock")
    # flock is per open file: another open of the same path contends as another process.
    with pytest.raises(StoreError, match=r"another ilyd daemon \(pid \d+\)"):
        lock_state_dir(tmp_path, "ilyd.0-of-2.db.lock")
    other = lock_state_dir(tmp_path, "ilyd.1-of-2.db.lock")  # another name: its own lock
    threading.Timer(0.3, first.close).start()
    second = lock_state_dir(tmp_path, "ilyd.0-of-2.db.lock", wait=20)  # once `first` goes
    assert first.closed
    second.close()
    other.close()


def test_a_schema_this_database_brought_up_to_date_is_not_asked_for_again(
        tmp_path: Path) -> None:
    # Every org's stores migrate at their start: once the file is up to date, asking again
    # must not queue for the write lock (a thousand orgs starting would write in turn).
    db = Database(tmp_path / "ilyd.db")
    steps = ["CREATE TABLE a (x)"]
    db.migrate("inbox", steps)
    writing, done = threading.Event(), threading.Event()

    def hold_the_write_lock() -> None:
        with db.transaction():
            writing.set()
            done.wait(60)

    holder = threading.Thread(target=hold_the_write_lock, daemon=True)
    holder.start()
    try:
        assert writing.wait(30)
        asked = threading.Thread(target=db.migrate, args=("inbox", steps), daemon=True)
        asked.start()
        asked.join(30)
        assert not asked.is_alive()
    finally:
        done.set()
        holder.join(30)
        db.close()


def _descriptors_under(directory: Path) -> int:
    """This process's open file descriptors on files in `directory`."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed since it was listed
            count += os.readlink(f"/proc/self/fd/{fd}").startswith(str(directory))
    return count


def test_connections_of_threads_that_ended_do_not_pile_up(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    db.connection().execute("SELECT 1").fetchone()

    def read() -> None:
        db.connection().execute("SELECT count(*) FROM schema_versions").fetchone()

    # A hundred threads come and go, as org restarts and idle write threads do.
    for _ in range(100):
        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
    # Each open connection holds two descriptors (the file and its WAL); SQLite keeps a
    # few of closed connections' while another connection holds a lock on the file, and
    # opens later connections on them: fewer than twenty connections' worth, not a
    # hundred.
    assert _descriptors_under(tmp_path) < 40
    db.close()
