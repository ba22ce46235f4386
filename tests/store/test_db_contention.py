"""Many threads of one process writing at once all get their transactions, none fails
with "database is locked" (writers queue on the Database's lock, not in SQLite's unfair
busy handler)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from ilyd.errors import StoreError
from ilyd.store import db as db_module
from ilyd.store.db import Database


def test_forty_threads_writing_at_once_all_commit(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Short enough that SQLite's busy handler gives up on an unlucky writer here.
    monkeypatch.setattr(db_module, "_BUSY_TIMEOUT_SECONDS", 1.0)
    database = Database(tmp_path / "state.db")
    with database.transaction() as tx:
        tx.execute("CREATE TABLE counts (thread INTEGER, n INTEGER)")
    failures: list[BaseException] = []

    def writer(thread: int) -> None:
        try:
            for n in range(15):
                with database.transaction() as tx:
                    tx.execute("INSERT INTO counts VALUES (?, ?)", (thread, n))
                    time.sleep(0.002)  # a transaction's other statements (GIL released)
                time.sleep(0.001)  # the rest of the actor's work
        except StoreError as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    try:
        assert failures == []
        rows = database.connection().execute("SELECT COUNT(*) FROM counts").fetchone()[0]
        assert rows == 40 * 15
    finally:
        database.close()
