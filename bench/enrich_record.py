"""enrich_record micro-benchmark: CPU µs per record of `ilyd.enrich.values.enrich_record`.

In process, one thread, no Salesforce: the records are bench/enricher.py's (and
bench/realtime.py's) mix of Accounts and Leads of the bundled sample companies (a
Website, or a Lead's work Email), free mail, junk Websites and unknown companies, each
with its own record-specific parts (the person in the Email, a fresh unknown domain).
The provider is the one an org gets for the default config (the bundled dataset, through
`ilyd.pipeline.providers.chain_for` and its health watch), or the bare DatasetProvider
with --bare. Records are enriched --warm times over the companies first (a running
daemon has seen them), then --records are timed with time.process_time, best of --runs.
Prints µs per record (best and every run); --profile prints a cProfile top 25.

    .venv/bin/python bench/enrich_record.py
    .venv/bin/python bench/enrich_record.py --records 50000 --runs 5
    .venv/bin/python bench/enrich_record.py --profile
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from enricher import entry  # bench/enricher.py's mix of changes

from ilyd.commands.demo_traffic import sample_domains
from ilyd.config.enrich import EnrichConfig
from ilyd.config.provider_spec import ProviderSpec
from ilyd.enrich.dataset import DatasetProvider, DatasetSettings, sample_dataset_path
from ilyd.enrich.provider import Provider
from ilyd.enrich.values import enrich_record
from ilyd.pipeline.providers import chain_for, watch_health


def record(n: int, domains: list[str]) -> tuple[str, dict[str, object]]:
    """The n-th change, in bench/enricher.py's mix."""
    change = entry(n, domains)
    return change.sobject, dict(change.fields)


def provider(bare: bool) -> Provider:
    settings = DatasetSettings(path=sample_dataset_path())
    if bare:
        return DatasetProvider(settings)
    enrich = EnrichConfig(providers=(ProviderSpec("dataset", settings),))
    return watch_health(chain_for(enrich), lambda *_: None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warm", type=int, default=2, help="passes over the companies first")
    parser.add_argument("--bare", action="store_true", help="the DatasetProvider alone")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    source = provider(args.bare)
    domains = sample_domains()
    for n in range(args.warm * 10 * len(domains)):
        enrich_record(*record(n, domains), source)
    # Fresh record numbers for every timed run: no Email or unknown domain seen before.
    first = args.warm * 10 * len(domains)
    runs = []
    for run in range(args.runs):
        batch = [record(first + run * args.records + i, domains) for i in range(args.records)]
        began = time.process_time()
        for sobject, fields in batch:
            enrich_record(sobject, fields, source)
        runs.append((time.process_time() - began) / args.records * 1e6)
    print(f"enrich_record: {min(runs):.1f} µs/record (best of {args.runs}: "
          + ", ".join(f"{r:.1f}" for r in runs) + f"; {args.records} records each, "
          + ("bare dataset" if args.bare else "pipeline provider") + ")")
    if args.profile:
        batch = [record(first + (args.runs + 1) * args.records + i, domains)
                 for i in range(args.records)]
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        for sobject, fields in batch:
            enrich_record(sobject, fields, source)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
