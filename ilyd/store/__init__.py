"""Durable state in one SQLite file: replay ids, inbox, cursors, cache, resync checkpoints."""

from ilyd.store.db import Database

__all__ = ["Database"]
