"""Writer benchmark: the real-time writer's CPU per flush of a few records.

Runs devorg in a child process (its CPU is not ours), provisions one org, creates the
records (Leads and Accounts, alternating, as bench/realtime.py's mix), enriches them from
the sample dataset and puts them in a real SQLite inbox. Then, for each batch size k, it
claims k rows at a time, hands them to one `Writer` and flushes it, `--flushes` times:
each flush reads the hashes and the policies' state, reads the records' current values
(one query, or one Composite call for Leads and Accounts together), sends one
Collections update and confirms. Only `Writer.flush` is timed.

Prints, per k: CPU ms per flush and per record (time.process_time of this process, which
includes the database's background checkpoints, and time.thread_time of the flushing
thread alone, with its median flush: on a busy machine the mean swings with the others'
load), and SQL statements per flush.
`--profile` prints a cProfile top 25 (by own time) of the flushes, per k; `--split` the
thread CPU of a flush spent in its HTTP calls (`OrgHttp.json`: encoding, the exchange,
decoding) and in its transactions (group commits: the pending digests, the confirmation),
and the rest.

    .venv/bin/python bench/writer_flush.py                      # k = 1, 3, 10; 200 flushes each
    .venv/bin/python bench/writer_flush.py --sizes 3 --flushes 300 --profile
    .venv/bin/python bench/writer_flush.py --sizes 1,3 --split
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from daemon_harness import DevOrgProcess, free_port, provision, write_config

from ilyd.actors.context import OrgSecrets
from ilyd.commands.demo_traffic import sample_domains
from ilyd.config import load_config
from ilyd.daemon.logs import configure_logging
from ilyd.enrich.values import enrich_record
from ilyd.pipeline.runtime import OrgPipeline
from ilyd.pipeline.work import WorkItem, inputs_hash
from ilyd.pipeline.writer import Writer
from ilyd.salesforce.http import OrgHttp
from ilyd.store import Database
from ilyd.store.group_commit import GroupCommit
from ilyd.store.inbox import InboxEntry


def _fields(n: int, domain: str) -> tuple[str, dict[str, object]]:
    if n % 2 == 0:
        return "Lead", {"LastName": f"Person {n}", "Company": "x",
                        "Email": f"person{n}@{domain}"}
    return "Account", {"Name": f"Company {n}", "Website": f"https://www.{domain}/"}


def _create(pipeline: OrgPipeline, count: int, domains: list[str]) -> list[InboxEntry]:
    """`count` new records in the org (Collections creates, untimed), as inbox entries."""
    made: list[InboxEntry] = []
    specs = [_fields(n, domains[n % len(domains)]) for n in range(count)]
    for sobject in ("Lead", "Account"):
        mine = [values for kind, values in specs if kind == sobject]
        for start in range(0, len(mine), 200):
            chunk = mine[start:start + 200]
            results = pipeline.rest.create_collection(sobject, chunk)
            made += [InboxEntry(sobject, str(r.id), values)
                     for r, values in zip(results, chunk, strict=True) if r.success]
    # Interleaved again, so a batch of k holds both types (one Composite read).
    leads = [e for e in made if e.sobject == "Lead"]
    accounts = [e for e in made if e.sobject == "Account"]
    mixed = [e for pair in zip(leads, accounts, strict=False) for e in pair]
    return mixed + leads[len(accounts):] + accounts[len(leads):]


def _works(pipeline: OrgPipeline, k: int) -> list[WorkItem]:
    """k claimed rows with their outcomes (untimed: the enricher's work)."""
    items = pipeline.inbox.claim(pipeline.org, k, worker="bench")
    return [WorkItem(item, enrich_record(item.sobject, item.fields, pipeline.provider),
                     inputs_hash(item.sobject, item.fields)) for item in items]


class _Split:
    """Thread CPU spent inside a few functions (patched on their classes while it runs)."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    def watch(self, owner: type, name: str, label: str) -> None:
        """Count the thread CPU of `owner.name` calls under `label`."""
        original = getattr(owner, name)
        self.spent[label] = 0.0

        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.spent[label] += time.thread_time() - began

        setattr(owner, name, timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,3,10", help="records per flush, comma-separated")
    parser.add_argument("--flushes", type=int, default=200, help="timed flushes per size")
    parser.add_argument("--warmup", type=int, default=10, help="untimed flushes per size")
    parser.add_argument("--profile", action="store_true", help="cProfile top 25 per size")
    parser.add_argument("--split", action="store_true",
                        help="thread CPU in HTTP calls, in transactions, and the rest")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    configure_logging("json", "warning", stream="stderr")

    with tempfile.TemporaryDirectory() as tmp, DevOrgProcess(1) as dev:
        root = Path(tmp)
        path = write_config(root, dev, free_port())
        provision(path)
        org = load_config(path).orgs[0]
        database = Database(root / "state" / "ilyd.db")
        database.checkpoint_in_background()  # as the daemon does: no commit checkpoints
        pipeline = OrgPipeline(org, OrgSecrets.read(org), database).acquire()
        writer = Writer(pipeline.org, pipeline.rest, pipeline.inbox, pipeline.state,
                        pipeline.hashes, enrich=org.enrich, budget=pipeline.budget,
                        scope=org.scope)
        statements = [0]

        def count(_sql: str) -> None:
            statements[0] += 1

        domains = sample_domains()
        # The last `--warmup` flushes of each size count SQL statements (untimed: a trace
        # callback costs CPU of its own).
        total = sum((args.flushes + 2 * args.warmup) * k for k in sizes)
        entries = _create(pipeline, total, domains)
        pipeline.inbox.put(pipeline.org, entries, source="bench")
        print(f"flushes={args.flushes} per size (after {args.warmup} untimed), "
              f"{len(entries)} records created")
        split = _Split()
        if args.split:
            split.watch(OrgHttp, "json", "HTTP calls")
            split.watch(GroupCommit, "submit", "transactions")
        for k in sizes:
            profile = cProfile.Profile(time.thread_time) if args.profile else None
            split.spent = dict.fromkeys(split.spent, 0.0)
            cpu = 0.0
            threads: list[float] = []  # each timed flush's thread CPU
            records = 0
            timed = range(args.warmup, args.warmup + args.flushes)
            spent = split.spent  # as of the timed flushes' end (before the counted ones)
            for n in range(2 * args.warmup + args.flushes):
                works = _works(pipeline, k)
                writer.add(works)
                if n == timed.start:
                    split.spent = dict.fromkeys(split.spent, 0.0)
                if n == timed.stop:
                    spent = dict(split.spent)
                    statements[0] = 0
                    database.connection().set_trace_callback(count)
                began, began_thread = time.process_time(), time.thread_time()
                if profile is not None and n in timed:
                    report = profile.runcall(writer.flush)
                else:
                    report = writer.flush()
                if n in timed:
                    cpu += time.process_time() - began
                    threads.append(time.thread_time() - began_thread)
                    records += len(works)
                if report.written != len(works):
                    raise RuntimeError(f"a flush wrote {report.written} of {len(works)}:"
                                       f" {report}")
            database.connection().set_trace_callback(None)
            sql = statements[0] / max(1, args.warmup)
            print(f"k={k:<3} CPU {cpu * 1e3 / args.flushes:.2f} ms/flush "
                  f"{cpu * 1e3 / records:.2f} ms/record (process); "
                  f"{sum(threads) * 1e3 / args.flushes:.2f} ms/flush (thread; median "
                  f"{statistics.median(threads) * 1e3:.2f}); SQL {sql:.1f} statements/flush")
            if args.split:
                parts = [f"{label} {seconds * 1e3 / args.flushes:.2f}"
                         for label, seconds in spent.items()]
                rest = sum(threads) - sum(spent.values())
                print(f"      of which (ms/flush, thread): {', '.join(parts)},"
                      f" the rest {rest * 1e3 / args.flushes:.2f}")
            if profile is not None:
                pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        pipeline.release()
        database.close()


if __name__ == "__main__":
    main()
