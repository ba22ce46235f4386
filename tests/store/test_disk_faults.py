"""State files that fail: a file size limit reached mid-write, a damaged file, a file a
newer ilyd wrote — and `ilyd state check` / `ilyd state backup` on real files."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ilyd.errors import StoreError
from ilyd.store import Database
from ilyd.store.maintenance import backup, check

_WRITE_PAST_A_SIZE_LIMIT = textwrap.dedent("""
    import resource, signal, sys
    from ilyd.errors import StoreError
    from ilyd.store import Database
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead
    db = Database(sys.argv[1])
    with db.transaction() as tx:
        tx.execute("CREATE TABLE t (n INTEGER, pad BLOB)")
        tx.execute("INSERT INTO t VALUES (0, zeroblob(100))")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, hard))
    try:
        for n in range(1, 1000):
            with db.transaction() as tx:
                tx.execute("INSERT INTO t VALUES (?, zeroblob(20000))", (n,))
    except StoreError as exc:
        print("ERROR", exc)
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    with db.transaction() as tx:
        tx.execute("INSERT INTO t VALUES (-1, zeroblob(10))")
    print("ROWS", db.connection().execute("SELECT count(*) FROM t").fetchone()[0])
""")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ilyd", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "ilyd.toml"
    path.write_text(f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n')
    return path


def test_a_write_past_the_size_limit_is_a_store_error_naming_the_file_and_keeps_what_was_stored(
        tmp_path: Path) -> None:
    path = tmp_path / "state" / "ilyd.db"
    done = subprocess.run([sys.executable, "-c", _WRITE_PAST_A_SIZE_LIMIT, str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    error = next(line for line in done.stdout.splitlines() if line.startswith("ERROR"))
    assert f"state file {path}" in error
    rows = int(next(line for line in done.stdout.splitlines() if line.startswith("ROWS"))[5:])
    assert rows >= 2  # the first row, the ones committed before the limit, and the last
    assert check(path).ok


def test_a_damaged_file_is_refused_at_open_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "ilyd.db"
    path.write_bytes(b"this is not what SQLite wrote" * 200)
    with pytest.raises(StoreError) as caught:
        Database(path)
    assert str(path) in str(caught.value)
    assert "ilyd state check" in str(caught.value)


def test_a_file_written_by_a_newer_ilyd_is_refused_and_left_untouched(db: Database) -> None:
    db.migrate("inbox", ["CREATE TABLE a (x)", "CREATE TABLE b (x)"])
    with db.transaction() as tx:
        tx.execute("UPDATE schema_versions SET version = 5 WHERE component = 'inbox'")
    db.close()
    db = Database(db.path)  # this ilyd opens the file the newer one wrote
    with pytest.raises(StoreError, match="written by a newer ilyd") as caught:
        db.migrate("inbox", ["CREATE TABLE a (x)", "CREATE TABLE b (x)"])
    assert str(db.path) in str(caught.value)
    version = db.connection().execute(
        "SELECT version FROM schema_versions WHERE component = 'inbox'").fetchone()[0]
    assert version == 5


def test_state_check_reports_each_file_and_fails_on_a_damaged_one(tmp_path: Path) -> None:
    config = _config(tmp_path)
    good = Database(tmp_path / "state" / "ilyd.0-of-2.db")
    good.migrate("inbox", ["CREATE TABLE a (x)"])
    good.close()
    damaged = tmp_path / "state" / "ilyd.1-of-2.db"
    damaged.write_bytes(b"SQLite format 3\x00" + b"\xff" * 8000)
    done = _cli("state", "check", "--config", str(config))
    assert done.returncode == 1
    assert f"OK    {good.path}" in done.stdout
    assert f"FAIL  {damaged}" in done.stdout
    report = json.loads(_cli("state", "check", "--config", str(config), "--json").stdout)
    assert [f["ok"] for f in report["files"]] == [True, False]
    assert report["files"][0]["schemas"] == {"inbox": 1}


def test_state_check_passes_on_sound_files(tmp_path: Path) -> None:
    db = Database(tmp_path / "state" / "ilyd.db")
    db.migrate("inbox", ["CREATE TABLE a (x)"])
    done = _cli("state", "check", "--config", str(_config(tmp_path)))
    db.close()
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("OK ")


_KEEP_WRITING = textwrap.dedent("""
    import sys
    from ilyd.store import Database
    db = Database(sys.argv[1])
    db.migrate("t", ["CREATE TABLE t (n INTEGER PRIMARY KEY, pad BLOB)"])
    n = 0
    while True:
        with db.transaction() as tx:
            tx.executemany("INSERT INTO t VALUES (?, zeroblob(500))",
                           [(n + i,) for i in range(50)])
        n += 50
        if n == 5000:
            print("READY", flush=True)
""")


def test_state_backup_copies_a_file_being_written_into_a_consistent_snapshot(
        tmp_path: Path) -> None:
    source = tmp_path / "state" / "ilyd.db"
    writer = subprocess.Popen([sys.executable, "-c", _KEEP_WRITING, str(source)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "READY"
        done = _cli("state", "backup", str(tmp_path / "copy"), "--config",
                    str(_config(tmp_path)))
    finally:
        writer.kill()
        writer.wait(timeout=10)
    assert done.returncode == 0, done.stderr
    copy = tmp_path / "copy" / "ilyd.db"
    assert check(copy).ok
    assert copy.stat().st_mode & 0o777 == 0o600
    copied = Database(copy)
    rows = copied.connection().execute("SELECT count(*), max(n) FROM t").fetchone()
    copied.close()
    # Whole transactions only: every row of the 50 a transaction wrote, or none of them.
    assert rows[0] >= 5000
    assert rows[0] % 50 == 0
    assert rows[1] == rows[0] - 1


def test_backup_refuses_a_damaged_source_and_leaves_no_partial_copy(tmp_path: Path) -> None:
    damaged = tmp_path / "ilyd.db"
    damaged.write_bytes(b"not a database" * 500)
    with pytest.raises(StoreError):
        backup(damaged, tmp_path / "copy")
    assert list((tmp_path / "copy").iterdir()) == []
