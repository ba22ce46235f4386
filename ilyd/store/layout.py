"""The state files on disk: one SQLite file per worker process, and moving rows between
layouts when the number of processes changes.

With `[daemon] processes = n` each worker process has a file of its own
(`ilyd.I-of-N.db`): one file shared by the processes makes every write wait for SQLite's
cross-process write lock, which shows in the end-to-end latency under load
(bench/realtime.py). One process keeps the plain `ilyd.db`.

When the count changes, `arrange` rebuilds the files of the new layout beside the old
ones (`*.partial`), then a marker file (`relayout.json`) commits the move: a process
killed before the marker is written leaves the old files untouched (the partials are
discarded at the next start); one killed after it has the move finished at the next start.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path

import structlog

from ilyd.daemon.shards import shard_of
from ilyd.errors import StoreError

log = structlog.get_logger(__name__)

_MARKER = "relayout.json"
_SHARD_FILE = re.compile(r"ilyd\.(\d+)-of-([1-9]\d*)\.db")
_SIDECARS = ("-wal", "-shm", "-journal")
_PARTIAL = ".partial"


def database_path(state_dir: Path, index: int | None = None, count: int = 1) -> Path:
    """The file of one process: state_dir/"ilyd.db" when count == 1 (index ignored),
    else state_dir/f"ilyd.{index}-of-{count}.db"."""
    return state_dir / ("ilyd.db" if count == 1 else f"ilyd.{index}-of-{count}.db")


def org_database(state_dir: Path, org: str) -> Path:
    """The file holding `org`'s state in the layout on disk (for CLI commands such as
    `ilyd check` / `ilyd connect` that run beside the daemon): ilyd.db if it exists or no
    layout file exists at all; else the `ilyd.I-of-N.db` with I = shard_of(org, N) of the
    layout found on disk (the one with the most files, should several be there)."""
    counts = [int(m[2]) for p in state_files(state_dir) if (m := _SHARD_FILE.fullmatch(p.name))]
    if (state_dir / "ilyd.db").exists() or not counts:
        return database_path(state_dir)
    count = max(counts, key=lambda n: (counts.count(n), n))
    return database_path(state_dir, shard_of(org, count), count)


def arrange(state_dir: Path, count: int) -> list[str]:
    """Make the database files on disk the layout for `count` processes, moving every
    row to the file of its org's worker; return one human line per file moved (empty
    when nothing had to move). Called by the daemon with the state directory's lock held,
    before any Database is opened."""
    lines: list[str] = []
    marker = state_dir / _MARKER
    if marker.exists():
        lines.append(_finish(state_dir, _read_marker(marker)))
    else:
        for stray in [*state_dir.glob("ilyd*.partial*"), state_dir / f"{_MARKER}.tmp"]:
            stray.unlink(missing_ok=True)  # an interrupted build: its sources are untouched
    targets = [database_path(state_dir, i, count) for i in range(count)]
    existing = state_files(state_dir)
    if set(existing) <= set(targets):
        return lines
    try:
        schemas = {source: _prepare(source) for source in existing}
        # On a conflict (a row in two sources: should not happen) the newest file wins.
        sources = sorted(existing, key=lambda p: p.stat().st_mtime, reverse=True)
        moved = dict.fromkeys(sources, 0)
        for index, target in enumerate(targets):
            for source, rows in _build(target, schemas, sources, index, count).items():
                moved[source] += rows
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot move the state in {state_dir} to {count} process files:"
                         f" {exc}; the old files are untouched — fix the cause and restart"
                         ) from exc
    plan = {"rename": [[t.name + _PARTIAL, t.name] for t in targets],
            "delete": [s.name for s in sources if s not in targets]}
    tmp = state_dir / f"{_MARKER}.tmp"
    _write_private(tmp, json.dumps(plan).encode())
    os.replace(tmp, marker)
    _fsync(state_dir)
    _finish(state_dir, plan)
    into = ", ".join(t.name for t in targets)
    for source in sources:
        log.info("state_file_moved", source=source.name, into=into, org_rows=moved[source])
        lines.append(f"moved {source.name} into {into} ({moved[source]} org rows)")
    return lines


def state_files(state_dir: Path) -> list[Path]:
    """Every database file of any layout in `state_dir`."""
    return sorted(p for p in state_dir.glob("ilyd*.db")
                  if p.name == "ilyd.db" or _SHARD_FILE.fullmatch(p.name))


def _prepare(source: Path) -> dict[str, tuple[str, str, list[str]]]:
    """Empty the source's WAL into it (the copy reads the file alone) and return its
    schema: name -> (type, sql, columns of a table)."""
    conn = sqlite3.connect(source, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        rows = conn.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL"
                            " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").fetchall()
        return {name: (kind, sql, [c[1] for c in conn.execute(f'PRAGMA table_info("{name}")')])
                for kind, name, sql in rows}
    finally:
        conn.close()


def _build(target: Path, schemas: dict[Path, dict[str, tuple[str, str, list[str]]]],
           sources: list[Path], index: int, count: int) -> dict[Path, int]:
    """Write the file of worker `index` as `target`.partial (durably); return the org rows
    taken from each source."""
    partial = target.with_name(target.name + _PARTIAL)
    _write_private(partial, b"")
    conn = sqlite3.connect(partial, isolation_level=None)
    moved: dict[Path, int] = {}
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
        # A row without an org (none should be) goes to worker 0 rather than nowhere.
        conn.create_function("ilyd_shard", 1, lambda org: 0 if org is None else
                             shard_of(str(org), count), deterministic=True)
        conn.execute("BEGIN")
        # Every table as in the source where it has the most columns (a later schema step
        # only adds them), then indexes, views and triggers.
        objects = sorted(((kind, name, sql, len(columns)) for s in sources
                          for name, (kind, sql, columns) in schemas[s].items()),
                         key=lambda o: (o[0] != "table", -o[3]))
        created: set[str] = set()
        for _, name, sql, _ in objects:
            if name not in created:
                created.add(name)
                conn.execute(sql)
        conn.execute("COMMIT")
        for source in sources:
            conn.execute("ATTACH DATABASE ? AS src", (str(source),))
            conn.execute("BEGIN")
            moved[source] = sum(_copy(conn, table, columns, sql, index)
                                for table, (kind, sql, columns) in schemas[source].items()
                                if kind == "table")
            conn.execute("COMMIT")
            conn.execute("DETACH DATABASE src")
    finally:
        conn.close()
    _fsync(partial)
    return moved


def _copy(conn: sqlite3.Connection, table: str, source_columns: list[str], source_sql: str,
          index: int) -> int:
    """Copy the source table's rows that belong in this file; return how many rows of an
    org table were copied."""
    if table == "schema_versions":
        conn.execute("INSERT INTO main.schema_versions(component, version)"
                     " SELECT component, version FROM src.schema_versions WHERE true"
                     " ON CONFLICT(component) DO UPDATE"
                     " SET version = max(version, excluded.version)")
        return 0
    info = conn.execute(f'PRAGMA main.table_info("{table}")').fetchall()
    keys = [row for row in info if row[5]]
    rowid = "WITHOUT ROWID" not in source_sql.upper()
    # A rowid alias (inbox.seq) is renumbered: rows of several sources would collide.
    alias = keys[0][1] if rowid and len(keys) == 1 and keys[0][2].upper() == "INTEGER" else None
    cols = ", ".join(f'"{row[1]}"' for row in info
                     if row[1] in source_columns and row[1] != alias)
    order = " ORDER BY rowid" if rowid else ""
    org = "org" in source_columns
    where, params = (" WHERE ilyd_shard(org) = ?", (index,)) if org else ("", ())
    cur = conn.execute(f'INSERT OR IGNORE INTO main."{table}" ({cols}) SELECT {cols}'  # noqa: S608 - names from sqlite_master
                       f' FROM src."{table}"{where}{order}', params)
    return cur.rowcount if org else 0


def _read_marker(marker: Path) -> dict[str, list]:
    try:
        plan = json.loads(marker.read_text(encoding="utf-8"))
        names = [*plan["delete"], *(n for pair in plan["rename"] for n in pair)]
        if not all(re.fullmatch(r"ilyd\.(\d+-of-\d+\.)?db(\.partial)?", str(n)) for n in names):
            raise ValueError("it names files that are not state files")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"cannot finish the state move recorded in {marker}: {exc}; restore"
                         " the state directory from a backup") from exc
    return plan


def _finish(state_dir: Path, plan: dict[str, list]) -> str:
    """Roll a committed move forward (again, after a crash: each step is idempotent)."""
    for partial, final in plan["rename"]:
        if (state_dir / partial).exists():
            for sidecar in _SIDECARS:  # a stale WAL would be replayed over the new file
                (state_dir / (final + sidecar)).unlink(missing_ok=True)
            os.replace(state_dir / partial, state_dir / final)
    _fsync(state_dir)
    for name in plan["delete"]:
        for sidecar in ("", *_SIDECARS):
            (state_dir / (name + sidecar)).unlink(missing_ok=True)
    (state_dir / _MARKER).unlink()
    _fsync(state_dir)
    finals = ", ".join(final for _, final in plan["rename"])
    log.info("state_move_finished", into=finals)
    return f"finished an interrupted move into {finals}"


def _write_private(path: Path, data: bytes) -> None:
    """Create `path` afresh with mode 0600 whatever the umask (the state holds tokens'
    metadata), with `data`, durably."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync(path: Path) -> None:
    """Make a file's data, or a directory's entries, durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
