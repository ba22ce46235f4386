"""Fixtures for the state-store tests: a real SQLite file per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ilyd.store import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A fresh state database file."""
    database = Database(tmp_path / "state.db")
    yield database
    database.close()
