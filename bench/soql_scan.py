"""SOQL evaluator throughput over an in-memory object of N records (prints figures).

    .venv/bin/python bench/soql_scan.py [N]
"""

from __future__ import annotations

import datetime as dt
import resource
import sys
import time
from collections.abc import Iterator, Mapping

from ilyd.devorg.soql import FieldInfo, execute, parse

FIELDS = {f.name.lower(): f for f in (
    FieldInfo("Id", "id"), FieldInfo("Name", "string"), FieldInfo("Website", "url"),
    FieldInfo("NumberOfEmployees", "int"), FieldInfo("IsDeleted", "boolean"),
    FieldInfo("SystemModstamp", "datetime"),
)}
START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


class Schema:
    def sobject(self, name: str) -> str | None:
        return "Account" if name.lower() == "account" else None

    def fields(self, sobject: str) -> Mapping[str, FieldInfo]:
        return FIELDS


class Source:
    def __init__(self, n: int) -> None:
        self.n = n

    def scan(self, sobject: str) -> Iterator[Mapping[str, object]]:
        for i in range(self.n):
            yield {"Id": f"001{i:012d}AAA", "Name": f"Account {i}", "IsDeleted": False,
                   "Website": None if i % 3 else f"site{i}.example",
                   "NumberOfEmployees": i % 1000,
                   "SystemModstamp": START + dt.timedelta(seconds=i)}

    def get(self, sobject: str, record_id: str) -> None:
        return None


QUERIES = [
    "SELECT Id, Website FROM Account WHERE Website != null AND NumberOfEmployees > 500",
    "SELECT Id FROM Account WHERE Name LIKE '%99%'",
    "SELECT Id FROM Account WHERE SystemModstamp > 2024-01-02T00:00:00Z "
    "ORDER BY SystemModstamp, Id LIMIT 2000",
    "SELECT COUNT() FROM Account WHERE NumberOfEmployees < 10",
]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    source = Source(n)
    base = time.perf_counter()
    for _ in source.scan("Account"):
        pass
    scan_only = time.perf_counter() - base
    print(f"{n} records; generating them alone takes {scan_only:.2f} s")
    for text in QUERIES:
        began = time.perf_counter()
        result = execute(parse(text), Schema(), source)
        rows = sum(1 for _ in result.records) if "COUNT()" not in text else result.total_size
        took = time.perf_counter() - began
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{took:6.2f} s  {n / took:>10,.0f} rec/s  max RSS {peak:6.0f} MiB  "
              f"{rows:>8} rows  {text}")


if __name__ == "__main__":
    main()
