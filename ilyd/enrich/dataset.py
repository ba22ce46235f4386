"""The dataset provider: company data from a CSV, JSONL or SQLite file keyed by domain.

An operator exports what they know about companies (or uses the bundled synthetic
sample) and maps its columns to Ily fields in the config:

    [provider]
    type = "dataset"
    path = "/var/lib/ilyd/companies.csv"
    domain_column = "domain"
    [provider.mapping]          # column -> Ily field API name
    name = "Ily_Company_Name__c"

CSV and JSONL files are read once into memory, with every key normalised like a record's
domain (`https://www.Acme.com` → `acme.com`). A SQLite file is queried in place — the
way to serve datasets too large for memory; its domain column must already hold
registrable domains, lower-case, punycode (and should be indexed). `reload()` (SIGHUP)
reads the file again and swaps it in only when it loaded cleanly. Bad files raise
`ConfigError` naming the file and line.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType

import structlog

from ilyd.enrich.dataset_settings import (
    SAMPLE_MAPPING,
    DatasetFormat,
    DatasetSettings,
    check_mapping,
    sample_dataset_path,
)
from ilyd.enrich.domain import extract_domain
from ilyd.enrich.provider import Lookup
from ilyd.errors import ConfigError, ProviderError
from ilyd.metrics import (
    PROVIDER_FAILURES,
    PROVIDER_REQUEST_DURATION,
    PROVIDER_REQUESTS,
    prepare_provider,
)

__all__ = [
    "SAMPLE_MAPPING",
    "DatasetFormat",
    "DatasetProvider",
    "DatasetSettings",
    "sample_dataset_path",
]

log = structlog.get_logger(__name__)


def _where(settings: DatasetSettings, line: int | None = None) -> str:
    return f"dataset {settings.path}" + (f":{line}" if line is not None else "")


# Found answers of a memory index kept per domain (see `_MemoryIndex.found`): enough for
# every company a busy daemon's orgs meet within minutes (bench/realtime.py's sample
# companies are 500), a few MiB at most; emptied when full (no LRU bookkeeping per hit).
_FOUND_MEMO_SIZE = 4096


class _MemoryIndex:
    """Domain → row values, all in memory (CSV and JSONL)."""

    def __init__(self, rows: dict[str, tuple[object, ...]]) -> None:
        self.rows = rows
        # The built answer (a frozen Lookup) of a row asked about before: a row is
        # fixed for the index's life (a reload builds a new index), and cleaning and
        # mapping its columns was most of a lookup's CPU. Keeps only rows: an unknown
        # domain costs a dict miss anyway, and unique ones would churn the memo.
        self.found: dict[str, Lookup] = {}

    def get(self, domain: str) -> tuple[object, ...] | None:
        return self.rows.get(domain)

    def __len__(self) -> int:
        return len(self.rows)

    def close(self) -> None:
        self.rows = {}
        self.found = {}


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class _SqliteIndex:
    """Domain → row values by query against a read-only SQLite file."""

    def __init__(self, settings: DatasetSettings, columns: tuple[str, ...]) -> None:
        uri = f"{settings.path.resolve().as_uri()}?mode=ro"
        try:
            # One connection behind a lock: a lookup is microseconds, and a shared
            # connection can be swapped atomically on reload.
            self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            table_columns = {
                row[1] for row in self._conn.execute(f"PRAGMA table_info({_quote(settings.table)})")
            }
        except sqlite3.Error as exc:
            raise ConfigError(f"{_where(settings)}: cannot be read as SQLite ({exc}); "
                              "check the path and that it is a SQLite database") from exc
        if not table_columns:
            self._conn.close()
            raise ConfigError(f"{_where(settings)}: has no table {settings.table!r}; "
                              "set table to the one holding the companies")
        missing = [c for c in (settings.domain_column, *columns) if c not in table_columns]
        if missing:
            self._conn.close()
            raise ConfigError(
                f"{_where(settings)}: table {settings.table!r} has no column(s) "
                f"{', '.join(map(repr, missing))}; it has {', '.join(sorted(table_columns))}"
            )
        if not self._indexed(settings):
            # Without an index every lookup scans the table: fine for a demo, slow for millions.
            log.warning("dataset_domain_not_indexed", path=str(settings.path),
                        table=settings.table, column=settings.domain_column,
                        fix=f"CREATE INDEX {settings.table}_by_domain ON "
                        f"{settings.table}({settings.domain_column})")
        self._lock = threading.Lock()
        self._settings = settings
        selected = ", ".join(_quote(c) for c in columns)
        self._sql = (f"SELECT {selected} FROM {_quote(settings.table)} "  # noqa: S608 (quoted, checked)
                     f"WHERE {_quote(settings.domain_column)} = ? LIMIT 1")
        self._count_sql = f"SELECT count(*) FROM {_quote(settings.table)}"  # noqa: S608

    def _indexed(self, settings: DatasetSettings) -> bool:
        """Whether an index (or the primary key) starts with the domain column."""
        for index in self._conn.execute(f"PRAGMA index_list({_quote(settings.table)})"):
            first = self._conn.execute(f"PRAGMA index_info({_quote(index[1])})").fetchone()
            if first is not None and first[2] == settings.domain_column:
                return True
        return False

    def get(self, domain: str) -> tuple[object, ...] | None:
        try:
            with self._lock:
                row = self._conn.execute(self._sql, (domain,)).fetchone()
        except sqlite3.Error as exc:
            raise ProviderError(
                f"{_where(self._settings)}: lookup of {domain} failed ({exc})",
                retryable=True, reason="dataset_unreadable",
            ) from exc
        return tuple(row) if row is not None else None

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute(self._count_sql).fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _key(settings: DatasetSettings, raw: object, line: int) -> str:
    result = extract_domain(raw if isinstance(raw, str) else "")
    if result.domain is None:
        raise ConfigError(
            f"{_where(settings, line)}: {settings.domain_column} {raw!r} is not a usable "
            f"domain ({result.detail}); fix or remove the row"
        )
    return result.domain


def _add(rows: dict[str, tuple[object, ...]], key: str, values: tuple[object, ...]) -> bool:
    if key in rows:
        return False  # first row wins: files are usually sorted best-first
    rows[key] = values
    return True


def _read_csv(settings: DatasetSettings, columns: tuple[str, ...]) -> dict[str, tuple[object, ...]]:
    rows: dict[str, tuple[object, ...]] = {}
    duplicates = 0
    line = 1
    try:
        with settings.path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle, strict=True)
            header = reader.fieldnames or []
            missing = [c for c in (settings.domain_column, *columns) if c not in header]
            if missing:
                raise ConfigError(
                    f"{_where(settings, 1)}: header has no column(s) "
                    f"{', '.join(map(repr, missing))}; it has {', '.join(header) or 'nothing'}"
                )
            for record in reader:
                line = reader.line_num
                if None in record or None in record.values():
                    raise ConfigError(
                        f"{_where(settings, line)}: row has a different number of columns "
                        f"than the header's {len(header)}; fix its quoting or commas"
                    )
                key = _key(settings, record[settings.domain_column], line)
                duplicates += not _add(rows, key, tuple(record[c] for c in columns))
    except csv.Error as exc:
        raise ConfigError(f"{_where(settings, line + 1)}: not valid CSV ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{_where(settings, line + 1)}: not UTF-8 text ({exc.reason}); "
                          "save the file as UTF-8") from exc
    except OSError as exc:
        raise ConfigError(f"{_where(settings)}: cannot be read ({exc.strerror})") from exc
    _log_duplicates(settings, duplicates)
    return rows


def _jsonl_objects(settings: DatasetSettings) -> Iterator[tuple[int, dict[str, object]]]:
    try:
        with settings.path.open(encoding="utf-8-sig") as handle:
            for line, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise ConfigError(
                        f"{_where(settings, line)}: not valid JSON ({exc.msg} at column "
                        f"{exc.colno}); each line must be one JSON object"
                    ) from exc
                if not isinstance(record, dict):
                    raise ConfigError(f"{_where(settings, line)}: is a JSON "
                                      f"{type(record).__name__}, not an object")
                yield line, record
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{_where(settings)}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise ConfigError(f"{_where(settings)}: cannot be read ({exc.strerror})") from exc


def _read_jsonl(
    settings: DatasetSettings, columns: tuple[str, ...]
) -> dict[str, tuple[object, ...]]:
    rows: dict[str, tuple[object, ...]] = {}
    duplicates = 0
    for line, record in _jsonl_objects(settings):
        if settings.domain_column not in record:
            raise ConfigError(
                f"{_where(settings, line)}: object has no {settings.domain_column!r} key"
            )
        key = _key(settings, record[settings.domain_column], line)
        duplicates += not _add(rows, key, tuple(record.get(c) for c in columns))
    _log_duplicates(settings, duplicates)
    return rows


def _log_duplicates(settings: DatasetSettings, duplicates: int) -> None:
    if duplicates:
        log.warning("dataset_duplicate_domains", path=str(settings.path), rows=duplicates,
                    kept="first row per domain")


class DatasetProvider:
    """A `Provider` answering from a dataset file. Safe to call from many threads."""

    def __init__(self, settings: DatasetSettings) -> None:
        problems = check_mapping(settings)
        if problems:
            raise ConfigError(problems)
        self.settings = settings
        self.name = settings.name
        self._columns = tuple(settings.mapping)
        self._targets = tuple(settings.mapping[c] for c in self._columns)
        self._format = settings.resolved_format
        self._reload_lock = threading.Lock()
        self._index: _MemoryIndex | _SqliteIndex = self._open()
        # Only a SQLite file is read at lookup time, so only it can fail one.
        prepare_provider(self.name, ("dataset_unreadable",)
                         if self._format is DatasetFormat.SQLITE else ())
        # The series every lookup counts in, looked up once (labels() per call is a lock
        # and a dict lookup); the registry keeps them for the process's life.
        self._requests = PROVIDER_REQUESTS.labels(self.name)
        self._duration = PROVIDER_REQUEST_DURATION.labels(self.name)
        log.info("dataset_loaded", path=str(settings.path), format=str(self._format),
                 companies=len(self._index))

    def _open(self) -> _MemoryIndex | _SqliteIndex:
        if self._format is DatasetFormat.SQLITE:
            if not self.settings.path.is_file():
                raise ConfigError(f"{_where(self.settings)}: no such file")
            return _SqliteIndex(self.settings, self._columns)
        reader = _read_csv if self._format is DatasetFormat.CSV else _read_jsonl
        return _MemoryIndex(reader(self.settings, self._columns))

    def __len__(self) -> int:
        """How many companies the dataset holds."""
        return len(self._index)

    def reload(self) -> int:
        """Read the file again (SIGHUP); keep the old data if the new file is bad.

        Returns the number of companies now loaded; raises ConfigError (old data kept).
        """
        with self._reload_lock:
            fresh = self._open()
            old, self._index = self._index, fresh
        old.close()
        count = len(fresh)
        log.info("dataset_reloaded", path=str(self.settings.path), companies=count)
        return count

    def lookup(self, domain: str) -> Lookup:
        """The company on `domain` (a registrable domain), or a not-found Lookup."""
        key = domain.strip().lower()
        self._requests.inc()
        started = time.monotonic()
        index = self._index
        try:
            if isinstance(index, _MemoryIndex):
                known = index.found.get(key)
                if known is not None:
                    return known
            row = index.get(key)
        except ProviderError as exc:
            PROVIDER_FAILURES.labels(self.name, exc.reason).inc()
            raise
        finally:
            self._duration.observe(time.monotonic() - started)
        if row is None:
            return Lookup(provider=self.name, domain=key, found=False)
        values = {
            target: value.strip() if isinstance(value, str) else value
            for target, value in zip(self._targets, row, strict=True)
            if value is not None and not (isinstance(value, str) and not value.strip())
        }
        answer = Lookup(provider=self.name, domain=key, found=True,
                        values=MappingProxyType(values))
        if isinstance(index, _MemoryIndex):
            if len(index.found) >= _FOUND_MEMO_SIZE:
                index.found.clear()
            index.found[key] = answer
        return answer

    def lookup_many(self, domains: Iterable[str]) -> Mapping[str, Lookup | ProviderError]:
        """`lookup` for each domain; a failing lookup is reported for its domain only."""
        answers: dict[str, Lookup | ProviderError] = {}
        for domain in domains:
            try:
                answers[domain] = self.lookup(domain)
            except ProviderError as exc:
                answers[domain] = exc
        return answers

    def close(self) -> None:
        """Release the file (SQLite) or the memory (CSV, JSONL)."""
        self._index.close()
