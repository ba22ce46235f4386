"""Resident memory of devorg holding 1,000,000 Accounts, and a Bulk 2.0 query over them.

Usage: .venv/bin/python bench/devorg_memory.py [--records 1000000]
"""

from __future__ import annotations

import argparse
import resource
import time

import requests

from ilyd.devorg import DevOrg
from ilyd.devorg.bootstrap import seed


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    with DevOrg() as dev:
        before = rss_mib()
        started = time.monotonic()
        seed(dev.states["org0"], "Account", args.records)
        seeded = time.monotonic() - started
        after = rss_mib()
        print(f"devorg memory: {args.records:,} Accounts seeded in {seeded:.1f} s; "
              f"RSS {before:.0f} MiB -> {after:.0f} MiB "
              f"({(after - before) * 1024 * 1024 / args.records:.0f} bytes/record)")
        org = dev.orgs[0]
        token = requests.post(dev.url + "/services/oauth2/token", data={
            "grant_type": "refresh_token", "client_id": org.client_id,
            "refresh_token": org.refresh_token}).json()["access_token"]
        base = dev.url + "/services/data/v59.0"
        headers = {"Authorization": f"Bearer {token}"}
        started = time.monotonic()
        job = requests.post(base + "/jobs/query", headers=headers, json={
            "operation": "query", "query": "SELECT Id, Name, Website FROM Account"}).json()
        while requests.get(f"{base}/jobs/query/{job['id']}", headers=headers
                           ).json()["state"] != "JobComplete":
            time.sleep(0.2)
        rows, locator = 0, None
        while locator != "null":
            params = {"maxRecords": 100_000, **({"locator": locator} if locator else {})}
            page = requests.get(f"{base}/jobs/query/{job['id']}/results", headers=headers,
                                params=params, stream=True)
            rows += sum(1 for _ in page.iter_lines()) - 1  # minus the header
            locator = page.headers["Sforce-Locator"]
        elapsed = time.monotonic() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"bulk query: {rows:,} rows in {elapsed:.1f} s ({rows / elapsed:,.0f} rows/s); "
              f"RSS now {rss_mib():.0f} MiB, peak {peak:.0f} MiB")


if __name__ == "__main__":
    main()
