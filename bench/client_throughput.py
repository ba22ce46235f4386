"""Salesforce client throughput against devorg: REST query, Bulk 2.0 query and ingest,
Collections update. Prints records/s, API calls per 1,000 records and peak RSS.

    .venv/bin/python bench/client_throughput.py [--records 100000] [--collections 2000]
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable

import requests

from ilyd.devorg import DevOrg
from ilyd.salesforce.auth import make_token_provider
from ilyd.salesforce.bulk import BulkClient
from ilyd.salesforce.rest import RestClient


def _calls(admin: str, org: str) -> int:
    return int(requests.get(f"{admin}/orgs/{org}/calls", timeout=30).json()["used"])


def _measure(label: str, n_expected: int, admin: str, org: str, run: Callable[[], int]) -> None:
    before = _calls(admin, org)
    start = time.perf_counter()
    n = run()
    elapsed = time.perf_counter() - start
    calls = _calls(admin, org) - before
    assert n == n_expected, (label, n, n_expected)
    print(f"{label:<28} {n:>9,} records  {n / elapsed:>11,.0f} rec/s  "
          f"{calls:>6} API calls ({calls * 1000 / n:.2f} per 1k)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--collections", type=int, default=2_000)
    args = parser.parse_args()

    with DevOrg(host="127.0.0.1", port=0, orgs=1) as dev:
        info = dev.orgs[0]
        requests.post(f"{dev.admin}/orgs/{info.name}/seed",
                      json={"sobject": "Account", "count": args.records}, timeout=600)
        provider = make_token_provider(
            "refresh_token", login_url=info.login_url, client_id=info.client_id,
            client_secret=info.client_secret, refresh_token=info.refresh_token, org=info.name)
        rest = RestClient(info.name, provider)
        bulk = BulkClient(rest)
        total = rest.query("SELECT COUNT() FROM Account").total_size
        soql = "SELECT Id, Name, Website FROM Account"

        _measure("REST query (2000/page)", total, dev.admin, info.name,
                 lambda: sum(1 for _ in rest.query(soql)))
        _measure("Bulk 2.0 query", total, dev.admin, info.name,
                 lambda: sum(1 for _ in bulk.query(soql, max_records=50_000)))

        ids = [r["Id"] for r in rest.query(soql)]

        def collections() -> int:
            done = 0
            for start in range(0, args.collections, 200):
                batch = [{"Id": i, "Website": "https://bench.example"}
                         for i in ids[start:start + 200]]
                done += sum(r.success for r in rest.update_collection("Account", batch))
            return done

        _measure("Collections update", min(args.collections, len(ids)), dev.admin, info.name,
                 collections)

        def ingest() -> int:
            rows = ({"Id": i, "Website": "https://bulk.example"} for i in ids)
            result = bulk.ingest("Account", "update", rows, ["Id", "Website"])
            return result.records_processed - result.records_failed

        _measure("Bulk 2.0 ingest update", len(ids), dev.admin, info.name, ingest)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS (client + devorg in one process): {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
