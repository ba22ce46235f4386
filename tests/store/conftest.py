"""Fixtures for the state-store tests: a real SQLite file per test."""

from __future__ import annotations

from tests.helpers.store import database_fixture

db = database_fixture()
