"""Checking and copying the state files while the daemon may be running.

`check` runs SQLite's own integrity check (https://www.sqlite.org/pragma.html#pragma_integrity_check)
on a read-only connection, so it never writes to a file the daemon uses. `backup` copies
a file with SQLite's online backup API (https://www.sqlite.org/backup.html): the copy is
one consistent snapshot of the file, WAL included, taken while the daemon keeps writing.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ilyd.errors import StoreError
from ilyd.store.db import state_error

# integrity_check stops after this many problems: enough to tell a damaged file.
_MAX_PROBLEMS = 20


@dataclass(frozen=True)
class FileCheck:
    """What `check` found in one state file."""

    path: Path
    problems: tuple[str, ...]  # empty: the file is sound
    schemas: tuple[tuple[str, int], ...] = ()  # (component, schema version)

    @property
    def ok(self) -> bool:
        """True when SQLite found nothing wrong."""
        return not self.problems


def _read_only(path: Path) -> sqlite3.Connection:
    # mode=ro: never creates the file, never writes; a WAL left by the daemon is still read.
    return sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None)


def check(path: Path) -> FileCheck:
    """Run SQLite's integrity check on `path` without writing to it."""
    try:
        conn = _read_only(path)
    except sqlite3.Error as exc:
        return FileCheck(path, (str(state_error(path, "open", exc)),))
    try:
        rows = [r[0] for r in conn.execute(f"PRAGMA integrity_check({_MAX_PROBLEMS})")]
        problems = tuple(r for r in rows if r != "ok")
        schemas: tuple[tuple[str, int], ...] = ()
        if not problems and conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'schema_versions'").fetchone():
            schemas = tuple((str(c), int(v)) for c, v in conn.execute(
                "SELECT component, version FROM schema_versions ORDER BY component"))
        return FileCheck(path, problems, schemas)
    except sqlite3.Error as exc:
        return FileCheck(path, (str(state_error(path, "check", exc)),))
    finally:
        conn.close()


def backup(path: Path, into: Path) -> Path:
    """Copy `path` into the directory `into` (same name, mode 0600) as one consistent
    snapshot, and check the copy; returns the copy's path."""
    into.mkdir(parents=True, exist_ok=True)
    target = into / path.name
    partial = into / f"{path.name}.partial"
    partial.unlink(missing_ok=True)
    try:
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        source = _read_only(path)
        try:
            copy = sqlite3.connect(partial, isolation_level=None)
            try:
                # All pages in one step: a step-wise copy restarts whenever the daemon
                # writes in between, and might never finish under load.
                source.backup(copy)
                copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            finally:
                copy.close()
        finally:
            source.close()
        checked = check(partial)
        if not checked.ok:
            raise StoreError(f"the copy of {path} failed its integrity check:"
                             f" {'; '.join(checked.problems)}; the source may be damaged:"
                             " run ilyd state check")
        os.replace(partial, target)
        fd = os.open(into, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise state_error(path, "back up", exc) from exc
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise StoreError(f"cannot write the backup of {path} into {into}: {exc}") from exc
    return target
