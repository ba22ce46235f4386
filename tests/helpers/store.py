"""State-database helpers for tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ilyd.store import Database


@contextmanager
def write_lock_held(db: Database) -> Iterator[None]:
    """Another thread holds a write transaction of `db` open for the block's duration."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db.transaction():
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold, name="holds-the-write-lock")
    holder.start()
    try:
        assert holding.wait(30), "the write transaction never began"
        yield
    finally:
        release.set()
        holder.join(30)
