"""Database: the state file's background WAL checkpoints."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from ilyd.store import Database


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
        _wait_for(lambda: db.checkpoints == 1)  # the first look (at start)
        time.sleep(0.2)
        assert db.checkpoints == 1  # nothing committed since: no checkpoint
        with db.transaction() as tx:
            tx.execute("CREATE TABLE t (x TEXT)")
            tx.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 2_000)
        _wait_for(lambda: db.checkpoints == 2)
        # Everything written is in the database file: a checkpoint now has nothing to copy.
        busy, log_frames, copied = db.connection().execute(
            "PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert (busy, log_frames) == (0, copied)
    finally:
        db.close()
    assert not any(t.name == "ilyd-checkpoint" for t in threading.enumerate())


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "no background checkpoint ran"
        time.sleep(0.02)
