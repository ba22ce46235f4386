"""State files per worker process: names, and rows moved when the process count changes."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ilyd.daemon.shards import shard_of
from ilyd.enrich.provider import Lookup
from ilyd.store import Database, layout
from ilyd.store.cache import ProviderCache
from ilyd.store.inbox import Inbox, InboxEntry
from ilyd.store.layout import arrange, database_path, org_database
from ilyd.store.org_flags import OrgFlagStore
from ilyd.store.replay import _MIGRATIONS as REPLAY_STEPS
from ilyd.store.replay import ReplayStore

ORGS = [f"org{n}" for n in range(1, 13)]
CHANNEL = "/data/AccountChangeEvent"

# table -> rows, each row a tuple of its values (inbox without its seq, which is renumbered)
Snapshot = dict[str, list[tuple[object, ...]]]


def populate(path: Path) -> None:
    """The state of twelve orgs in a file (closed: its WAL merged)."""
    db = Database(path)
    try:
        fill(db)
    finally:
        db.close()


def fill(db: Database, orgs: list[str] = ORGS) -> None:
    """Real state of twelve orgs through the stores: inbox rows, replay ids and
    checkpoints, pause flags, and provider cache entries (which belong to no org)."""
    inbox = Inbox(db)
    flags = OrgFlagStore(db)
    cache = ProviderCache(db)
    for org in orgs:
        n = int(org[3:])
        entries = [InboxEntry("Account", f"001{n:03d}{i:012d}", {"Website": f"{org}-{i}.com"},
                              modstamp=datetime(2026, 1, n, tzinfo=UTC)) for i in range(3)]
        inbox.put(org, entries, channel=CHANNEL, replay_id=1000 + n)
        if n % 3 == 0:
            flags.set_paused(org, True, now=float(n))
    for domain in ("acme.com", "example.org"):
        cache.put(Lookup("dns", domain, True, {"Ily_Domain__c": domain}), ttl_seconds=3600)


def snapshot(path: Path) -> Snapshot:
    """Every row of every table of one file, sorted (inbox rows in seq order per org)."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        rows: Snapshot = {}
        for table in tables:
            if table == "inbox":
                query = ("SELECT org, sobject, record_id, change_type, fields, source,"
                         " received_at, attempts FROM inbox ORDER BY org, seq")
            else:
                query = f'SELECT * FROM "{table}"'  # noqa: S608 - our own table names
            rows[table] = conn.execute(query).fetchall()
        return rows
    finally:
        conn.close()


def merged(paths: list[Path]) -> Snapshot:
    """The per-org rows of several files together (sorted), and their other tables as the
    first file has them."""
    total: Snapshot = {}
    for path in paths:
        for table, rows in snapshot(path).items():
            total.setdefault(table, []).extend(rows)
    per_file = snapshot(paths[0])
    for table in ("provider_cache", "schema_versions"):
        total[table] = per_file[table]
    return {table: sorted(rows, key=repr) for table, rows in total.items()}


def files(state_dir: Path) -> list[str]:
    return sorted(p.name for p in state_dir.iterdir() if p.is_file())


def stale_wal(workdir: Path) -> Path:
    """A copy of a WAL with committed, uncheckpointed transactions, and its database file,
    as a daemon killed with SIGKILL leaves them: returns the WAL."""
    workdir.mkdir()
    db = Database(workdir / "live.db")
    try:
        fill(db)
        for name in ("live.db", "live.db-wal"):
            shutil.copy(workdir / name, workdir / f"crashed{name[4:]}")
    finally:
        db.close()
    assert (workdir / "crashed.db-wal").stat().st_size > 0
    return workdir / "crashed.db-wal"


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A state directory holding the one-process file of twelve orgs."""
    populate(tmp_path / "ilyd.db")
    return tmp_path


@pytest.fixture
def before(state_dir: Path) -> Snapshot:
    return merged([state_dir / "ilyd.db"])


class Killed(BaseException):
    """The process dying at a chosen step (SIGKILL, as far as the files can tell)."""


@pytest.fixture
def kill_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[str], bool]], None]:
    """`kill_at(when)`: the next os.replace whose source name satisfies `when` dies instead."""
    real = os.replace

    def arm(when: Callable[[str], bool]) -> None:
        def replace(src: str | Path, dst: str | Path) -> None:
            if when(Path(src).name):
                monkeypatch.setattr(os, "replace", real)
                raise Killed
            real(src, dst)
        monkeypatch.setattr(os, "replace", replace)

    return arm


def test_database_path_names_one_file_or_one_per_worker(tmp_path: Path) -> None:
    assert database_path(tmp_path) == tmp_path / "ilyd.db"
    assert database_path(tmp_path, 2, 1) == tmp_path / "ilyd.db"
    assert database_path(tmp_path, 0, 3) == tmp_path / "ilyd.0-of-3.db"
    assert database_path(tmp_path, 2, 3) == tmp_path / "ilyd.2-of-3.db"


def test_one_file_splits_into_a_file_per_worker_holding_its_orgs(state_dir: Path,
                                                                   before: Snapshot) -> None:
    lines = arrange(state_dir, 3)

    assert lines == ["moved ilyd.db into ilyd.0-of-3.db, ilyd.1-of-3.db, ilyd.2-of-3.db"
                     f" ({len(before['inbox']) + 2 * len(ORGS) + 4} org rows)"]
    assert files(state_dir) == ["ilyd.0-of-3.db", "ilyd.1-of-3.db", "ilyd.2-of-3.db"]
    targets = [database_path(state_dir, i, 3) for i in range(3)]
    assert merged(targets) == before
    for index, path in enumerate(targets):
        rows = snapshot(path)
        assert rows["provider_cache"] == before["provider_cache"]
        for table in ("inbox", "replay_ids", "catchup_checkpoints", "org_paused"):
            assert {row[0] for row in rows[table]} <= {
                org for org in ORGS if shard_of(org, 3) == index}, table
        assert {row[0] for row in rows["inbox"]} == {
            org for org in ORGS if shard_of(org, 3) == index}


def test_moved_inbox_rows_are_claimed_and_confirmed_through_the_inbox(state_dir: Path) -> None:
    arrange(state_dir, 3)

    for org in ORGS:
        db = Database(database_path(state_dir, shard_of(org, 3), 3))
        try:
            inbox = Inbox(db)
            assert inbox.replay.get(org, CHANNEL) == 1000 + int(org[3:])
            items = inbox.claim(org, 10)
            assert [i.fields["Website"] for i in items] == [f"{org}-{i}.com" for i in range(3)]
            assert inbox.confirm(items) == 3
            inbox.put(org, [InboxEntry("Account", "001NEW", {"Website": "new.com"})])
            assert [i.record_id for i in inbox.pending(org)] == ["001NEW"]
        finally:
            db.close()


def test_rows_still_in_the_wal_of_a_killed_daemon_are_moved(tmp_path: Path) -> None:
    wal = stale_wal(tmp_path / "crash")
    probe, state_dir = tmp_path / "probe", tmp_path / "state"
    for directory in (probe, state_dir):
        directory.mkdir()
        shutil.copy(wal.with_name("crashed.db"), directory / "ilyd.db")
        shutil.copy(wal, directory / "ilyd.db-wal")
    with_wal = merged([probe / "ilyd.db"])  # read through the WAL
    assert len(with_wal["inbox"]) == 3 * len(ORGS)

    arrange(state_dir, 2)

    assert files(state_dir) == ["ilyd.0-of-2.db", "ilyd.1-of-2.db"]
    assert merged([database_path(state_dir, i, 2) for i in range(2)]) == with_wal


def test_files_are_private_whatever_the_umask(state_dir: Path) -> None:
    old = os.umask(0o002)
    try:
        arrange(state_dir, 2)
    finally:
        os.umask(old)

    for name in files(state_dir):
        assert stat.S_IMODE((state_dir / name).stat().st_mode) == 0o600, name


def test_three_files_merge_into_two_and_two_into_one_without_loss(state_dir: Path,
                                                                   before: Snapshot) -> None:
    arrange(state_dir, 3)

    assert len(arrange(state_dir, 2)) == 3
    assert files(state_dir) == ["ilyd.0-of-2.db", "ilyd.1-of-2.db"]
    assert merged([database_path(state_dir, i, 2) for i in range(2)]) == before
    assert len(arrange(state_dir, 1)) == 2
    assert files(state_dir) == ["ilyd.db"]
    assert merged([state_dir / "ilyd.db"]) == before


def test_arranging_the_layout_already_on_disk_touches_nothing(state_dir: Path) -> None:
    assert arrange(state_dir, 1) == []
    arrange(state_dir, 3)
    stamps = {name: (state_dir / name).stat().st_mtime_ns for name in files(state_dir)}

    assert arrange(state_dir, 3) == []
    assert {name: (state_dir / name).stat().st_mtime_ns for name in files(state_dir)} == stamps


def test_an_empty_state_directory_stays_empty(tmp_path: Path) -> None:
    assert arrange(tmp_path, 4) == []
    assert files(tmp_path) == []


def test_files_of_the_target_layout_beside_another_layout_are_rebuilt(state_dir: Path) -> None:
    arrange(state_dir, 2)
    populate(state_dir / "ilyd.db")  # should not happen: both layouts on disk, newest last
    newest = merged([state_dir / "ilyd.db"])

    lines = arrange(state_dir, 2)

    assert len(lines) == 3
    assert files(state_dir) == ["ilyd.0-of-2.db", "ilyd.1-of-2.db"]
    # Every row once (by the tables' keys), as in the newest file.
    assert merged([database_path(state_dir, i, 2) for i in range(2)]) == newest


def test_inbox_rows_numbered_apart_in_each_file_all_survive_the_merge(tmp_path: Path) -> None:
    for index in range(2):
        db = Database(database_path(tmp_path, index, 2))
        try:
            fill(db, [org for org in ORGS if shard_of(org, 2) == index])
        finally:
            db.close()

    arrange(tmp_path, 1)

    db = Database(tmp_path / "ilyd.db")
    try:
        inbox = Inbox(db)
        assert inbox.depth() == 3 * len(ORGS)
        for n, org in enumerate(ORGS, start=1):
            assert [i.record_id for i in inbox.pending(org)] == [
                f"001{n:03d}{i:012d}" for i in range(3)]
    finally:
        db.close()


def test_tables_missing_from_some_sources_are_created_from_the_others(tmp_path: Path) -> None:
    first, second = Database(database_path(tmp_path, 0, 2)), Database(database_path(tmp_path, 1, 2))
    try:
        Inbox(first).put("org1", [InboxEntry("Lead", "00Q1")])
        OrgFlagStore(second).set_paused("org2", True, now=5.0)
    finally:
        first.close()
        second.close()

    arrange(tmp_path, 1)

    db = Database(tmp_path / "ilyd.db")
    try:
        assert [i.record_id for i in Inbox(db).pending("org1")] == ["00Q1"]
        assert OrgFlagStore(db).paused() == {"org2"}
        versions = dict(db.connection().execute("SELECT component, version FROM schema_versions"))
        assert versions == {"inbox": 1, "replay": 2, "org_flags": 1}
    finally:
        db.close()


@pytest.mark.parametrize("older_schema_is_newer_file", [True, False])
def test_files_at_different_schema_versions_merge_at_the_newest(
        tmp_path: Path, older_schema_is_newer_file: bool) -> None:
    old_org, new_org = (next(o for o in ORGS if shard_of(o, 2) == i) for i in range(2))
    old, new = Database(database_path(tmp_path, 0, 2)), Database(database_path(tmp_path, 1, 2))
    try:
        old.migrate("replay", REPLAY_STEPS[:1])  # a daemon from before the event time
        with old.transaction() as tx:
            tx.execute("INSERT INTO replay_ids VALUES (?, ?, 7, 1.0)", (old_org, CHANNEL))
        ReplayStore(new).set(new_org, CHANNEL, 9, event_time=datetime(2026, 2, 1, tzinfo=UTC))
    finally:
        old.close()
        new.close()
    stamps = (1_000_000, 2_000_000) if older_schema_is_newer_file else (2_000_000, 1_000_000)
    for path, stamp in zip((old.path, new.path), stamps, strict=True):
        os.utime(path, (stamp, stamp))

    arrange(tmp_path, 1)

    db = Database(tmp_path / "ilyd.db")
    try:
        replay = ReplayStore(db)
        assert (replay.get(old_org, CHANNEL), replay.event_time(old_org, CHANNEL)) == (7, None)
        assert replay.get(new_org, CHANNEL) == 9
        assert replay.event_time(new_org, CHANNEL) == datetime(2026, 2, 1, tzinfo=UTC)
        versions = dict(db.connection().execute("SELECT component, version FROM schema_versions"))
        assert versions == {"replay": len(REPLAY_STEPS)}
    finally:
        db.close()


def test_a_build_killed_before_the_move_was_committed_is_discarded(
        state_dir: Path, before: Snapshot, kill_at: Callable[[Callable[[str], bool]], None],
) -> None:
    (state_dir / "ilyd.1-of-2.db.partial").write_bytes(b"from an older interrupted build")
    kill_at(lambda name: name == "relayout.json.tmp")
    with pytest.raises(Killed):
        arrange(state_dir, 3)
    assert "ilyd.db" in files(state_dir)
    assert "ilyd.0-of-3.db.partial" in files(state_dir)

    assert len(arrange(state_dir, 3)) == 1

    assert files(state_dir) == ["ilyd.0-of-3.db", "ilyd.1-of-3.db", "ilyd.2-of-3.db"]
    assert merged([database_path(state_dir, i, 3) for i in range(3)]) == before


@pytest.mark.parametrize("count", [3, 2])
def test_a_move_killed_during_the_renames_is_finished_at_the_next_start(
        state_dir: Path, before: Snapshot, kill_at: Callable[[Callable[[str], bool]], None],
        count: int,
) -> None:
    kill_at(lambda name: name == "ilyd.1-of-3.db.partial")
    with pytest.raises(Killed):
        arrange(state_dir, 3)
    assert files(state_dir) == ["ilyd.0-of-3.db", "ilyd.1-of-3.db.partial",
                                "ilyd.2-of-3.db.partial", "ilyd.db", "relayout.json"]
    # A WAL left beside a final name (by an older file of that name) must not be replayed
    # over the new file.
    shutil.copy(stale_wal(state_dir / "old"), state_dir / "ilyd.1-of-3.db-wal")

    lines = arrange(state_dir, count)

    assert lines[0] == "finished an interrupted move into ilyd.0-of-3.db, ilyd.1-of-3.db," \
                       " ilyd.2-of-3.db"
    assert len(lines) == (1 if count == 3 else 4)
    assert files(state_dir) == [f"ilyd.{i}-of-{count}.db" for i in range(count)]
    assert merged([database_path(state_dir, i, count) for i in range(count)]) == before


def test_org_database_finds_each_orgs_file_in_the_layout_on_disk(state_dir: Path) -> None:
    empty = state_dir / "empty"
    empty.mkdir()
    assert org_database(empty, "org1") == empty / "ilyd.db"
    assert org_database(state_dir, "org1") == state_dir / "ilyd.db"

    arrange(state_dir, 3)

    for org in ORGS:
        path = org_database(state_dir, org)
        assert path == database_path(state_dir, shard_of(org, 3), 3)
        assert org in {row[0] for row in snapshot(path)["inbox"]}
    arrange(state_dir, 2)
    assert {org_database(state_dir, org) for org in ORGS} == {
        database_path(state_dir, 0, 2), database_path(state_dir, 1, 2)}


def test_a_corrupt_marker_stops_with_a_store_error(state_dir: Path) -> None:
    (state_dir / "relayout.json").write_text('{"rename": [], "delete": ["../etc/passwd"]}')

    with pytest.raises(layout.StoreError, match="not state files"):
        arrange(state_dir, 3)
    assert "ilyd.db" in files(state_dir)
