"""State-database helpers for tests: the one state-database fixture, and a write lock
held by another thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ilyd.store import Database


def database_fixture() -> Any:
    """A state-database fixture, assigned under the name tests ask for (`db =
    database_fixture()`, `database = database_fixture()`): a fresh file, closed after the
    test, where a daemon whose state_dir is the test's `tmp_path / "state"` keeps it."""

    @pytest.fixture
    def database(tmp_path: Path) -> Iterator[Database]:
        db = Database(tmp_path / "state" / "ilyd.db")
        yield db
        db.close()

    return database


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
