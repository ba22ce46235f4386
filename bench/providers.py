"""Provider throughput against local servers: lookups/s for HTTP and DNS, cache miss and hit.

Run from the repository root:  .venv/bin/python bench/providers.py [--lookups N] [--threads T]
Prints figures; asserts nothing. The servers are the tests' loopback fixtures, pure Python
(http.server, dnslib) in this same process, so the cold figures mostly measure them: read
them as a floor and for before/after comparisons of our own code, not as vendor throughput.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ilyd.enrich.dns_provider import DnsProvider, DnsSettings
from ilyd.enrich.http_provider import HttpProvider, HttpSettings
from ilyd.store import Database
from ilyd.store.cache import CachedProvider, ProviderCache
from tests.enrich.conftest import HttpStub, Reply, ZoneServer

COMPANY = {"name": "Bench Co", "metrics": {"employees": 42}, "tech": [{"name": "Slack"}]}


def company_zone(count: int) -> str:
    """A zone with `count` distinct companies, each a Google + Cloudflare + SES setup."""
    lines = []
    for i in range(count):
        d = f"co{i}.test."
        lines += [
            f"{d} 300 IN MX 1 smtp.google.com.",
            f'{d} 300 IN TXT "v=spf1 include:amazonses.com ~all"',
            f'{d} 300 IN TXT "atlassian-domain-verification=b{i}"',
            f"{d} 300 IN NS ada.ns.cloudflare.com.",
            f"{d} 300 IN A 192.0.2.{i % 250 + 1}",
            f"www.{d} 300 IN CNAME d{i}.cloudfront.net.",
            f"d{i}.cloudfront.net. 300 IN A 203.0.113.{i % 250 + 1}",
        ]
    lines.append('amazonses.com. 300 IN TXT "v=spf1 ip4:203.0.113.0/24 -all"')
    return "\n".join(lines)


def rate(label: str, work: Callable[[str], object], domains: Sequence[str], threads: int) -> None:
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, domains))
    elapsed = time.perf_counter() - started
    per_second = len(domains) / elapsed
    print(f"{label:<40} {len(domains):>7} lookups {elapsed:8.3f} s {per_second:10.0f} /s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    # Per-response debug lines would be measured along with the lookups.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    domains = [f"co{i}.test" for i in range(args.lookups)]

    stub = HttpStub()
    stub.routes.update({f"/find/{d}": [Reply(200, COMPANY)] for d in domains})
    http = HttpProvider(HttpSettings(
        name="bench-http", url=stub.base + "/find/{domain}",
        fields={"Ily_Company_Name__c": "name", "Ily_Employee_Count__c": "metrics.employees",
                "Ily_Technologies__c": "tech[*].name"},
        auth_header="Authorization", auth_prefix="Bearer ", secret="bench",
        requests_per_second=1e9, max_concurrency=args.threads,
    ))
    zone = ZoneServer(company_zone(args.lookups))
    dns = DnsProvider(DnsSettings(name="bench-dns", nameservers=("127.0.0.1",), port=zone.port,
                                  max_concurrency=args.threads))
    print(f"threads={args.threads}")
    try:
        rate("http provider (loopback http.server)", http.lookup, domains, args.threads)
        rate("dns provider (loopback dnslib, cold)", dns.lookup, domains, args.threads)
        rate("dns provider (resolver cache warm)", dns.lookup, domains, args.threads)
        with tempfile.TemporaryDirectory() as tmp:
            db = Database(Path(tmp) / "state.db")
            cache = ProviderCache(db)
            stub.requests.clear()
            cached = CachedProvider(http, cache)
            rate("cache miss (http provider behind cache)", cached.lookup, domains, args.threads)
            rate("cache hit (sqlite read)", cached.lookup, domains, args.threads)
            hot = [domains[0]] * len(domains)
            cache.clear()
            stub.requests.clear()
            rate("one hot domain, de-duplicated", cached.lookup, hot, args.threads)
            print(f"{'':<40} vendor requests for the hot domain: {len(stub.requests)}")
            stats = cache.stats()
            print(f"cache stats: entries={stats.entries} hits={stats.hits} misses={stats.misses}")
            db.close()
    finally:
        http.close()
        stub.stop()
        zone.stop()


if __name__ == "__main__":
    main()
