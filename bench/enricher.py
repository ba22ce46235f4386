"""Enricher benchmark: the enricher part's CPU per record and wake-ups per record.

Starts devorg (only for the orgs' configs and clients: nothing is written to it), puts
Lead rows into a real SQLite inbox as the subscriber does (one `put` + `wake.set()`, or
`wake.stored(n)` with --stored, per event, paced at --rate events/s per org, or --burst
rows per put) and lets each org's enricher part drain them into a sink part (in the
same org actor) that confirms the rows as the writer would.
Prints, for the enricher only (its messages in the org actor's thread, the lookup pool,
the shared timers thread): CPU µs per record, rounds and SQL statements per record.

    .venv/bin/python bench/enricher.py                       # 4 orgs × 20 events/s, 15 s
    .venv/bin/python bench/enricher.py --orgs 1 --rate 200 --seconds 10
    .venv/bin/python bench/enricher.py --orgs 2 --rate 5 --burst 50 --seconds 10
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import pykka
from daemon_harness import free_port, write_config

from ilyd.actors.component import Component
from ilyd.actors.context import OrgContext, OrgSecrets
from ilyd.actors.enricher import EnricherComponent
from ilyd.actors.messages import GetParts
from ilyd.actors.org import OrgActor, stop_org
from ilyd.actors.writer import Enriched
from ilyd.commands.demo_traffic import sample_domains
from ilyd.config import load_config
from ilyd.daemon.logs import configure_logging
from ilyd.devorg import DevOrg
from ilyd.enrich.values import enrich_record
from ilyd.pipeline.runtime import OrgPipeline
from ilyd.store import Database
from ilyd.store.inbox import InboxEntry


def entry(n: int, domains: list[str]) -> InboxEntry:
    """The n-th change, in bench/realtime.py's mix: Accounts and Leads of the sample
    companies (a Website, or a Lead's work Email), some free mail, junk and unknown."""
    domain = domains[n % len(domains)]
    lead = n % 2 == 0
    sobject, record = ("Lead", f"00Q{n:015d}") if lead else ("Account", f"001{n:015d}")
    kind = n % 10
    if kind < 7:
        values: dict[str, object] = ({"Email": f"person{n}@{domain}"} if lead and n % 4
                                     else {"Website": f"https://www.{domain}/"})
    elif kind == 7:
        values = {"Email": f"someone{n}@gmail.com"}
    elif kind == 8:
        values = {"Website": "n/a"}
    else:
        values = {"Website": f"https://unknown-company-{n}.example"}
    if lead:
        values = {"Company": "x", "LastName": "L", **values}
    return InboxEntry(sobject, record, values)


class _Sink(Component):
    """Stands in for the writer: confirms what it is handed, counts it."""

    def __init__(self, pipeline: OrgPipeline) -> None:
        self.pipeline = pipeline
        self.records = 0

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Enriched):
            self.pipeline.inbox.confirm([w.item for w in message.items])
            self.records += len(message.items)
        return None


class _Supervisor(pykka.ThreadingActor):
    def on_receive(self, message: Any) -> None:
        return None


class _CountedEnricher(EnricherComponent):
    """The real part, counting its rounds, their CPU time and the SQL statements its
    thread runs."""

    rounds = 0
    statements = 0
    cpu = 0.0
    _lock = threading.Lock()
    # --profile: every actor's messages under one profiler each, in thread CPU time.
    profiles: ClassVar[list[cProfile.Profile]] = []
    profiling = False

    def on_start(self) -> None:
        def count(_sql: str) -> None:
            with _CountedEnricher._lock:
                _CountedEnricher.statements += 1

        self._pipeline.database.connection().set_trace_callback(count)
        super().on_start()

    def on_receive(self, message: Any) -> Any:
        began = time.thread_time()
        try:
            if not _CountedEnricher.profiling:
                return super().on_receive(message)
            profile = getattr(self, "_profile", None)
            if profile is None:
                profile = self._profile = cProfile.Profile(time.thread_time)
                with _CountedEnricher._lock:
                    _CountedEnricher.profiles.append(profile)
            return profile.runcall(super().on_receive, message)
        finally:
            with _CountedEnricher._lock:
                _CountedEnricher.rounds += 1
                _CountedEnricher.cpu += time.thread_time() - began


def enricher_cpu() -> float:
    """CPU seconds of the enricher parts' rounds, the lookup pool and the timers thread."""
    total = _CountedEnricher.cpu
    for thread in threading.enumerate():
        name = thread.name
        if thread.ident is None or not (name.startswith("enrich-") or name == "ilyd-timers"):
            continue
        with contextlib.suppress(OSError):  # the thread ended meanwhile
            total += time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=4)
    parser.add_argument("--rate", type=float, default=20.0, help="puts per second per org")
    parser.add_argument("--burst", type=int, default=1, help="rows per put")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cold", action="store_true",
                        help="no warm-up: every company is new to the provider and enricher")
    parser.add_argument("--stored", action="store_true",
                        help="wake with Wake.stored(n) (rows put) instead of Wake.set()")
    parser.add_argument("--profile", action="store_true",
                        help="print the actors' hottest functions (thread CPU time)")
    args = parser.parse_args()
    configure_logging("json", "warning", stream="stderr")

    with tempfile.TemporaryDirectory() as tmp, \
            DevOrg(host="127.0.0.1", port=0, orgs=args.orgs) as dev:
        root = Path(tmp)
        config = load_config(write_config(root, dev, free_port(),
                                           defaults=f"workers = {args.workers}\n"))
        database = Database(root / "state" / "ilyd.db")
        supervisor = _Supervisor.start()
        parts: list[tuple[OrgPipeline, _Sink, pykka.ActorRef[Any]]] = []
        for org in config.orgs:
            pipeline = OrgPipeline(org, OrgSecrets.read(org), database)
            sink = _Sink(pipeline)

            def enricher(context: OrgContext, pipeline: OrgPipeline = pipeline,
                         sink: _Sink = sink) -> Component:
                return _CountedEnricher(context, pipeline.acquire(), sink.ref)

            actor = OrgActor.start(org, 1, supervisor, database, factories=[
                ("writer", lambda _context, sink=sink: sink), ("enricher", enricher)])
            actor.ask(GetParts(), timeout=10)
            parts.append((pipeline, sink, actor))

        domains = sample_domains()
        if not args.cold:
            # A running daemon has seen its companies before (realtime.py's 500 within
            # seconds): the provider's and the enricher's per-company work is warm.
            warm = parts[0][0]
            for n in range(4 * len(domains)):
                change = entry(n, domains)
                enrich_record(change.sobject, change.fields, warm.provider)
        sent = 0
        interval = 1.0 / args.rate
        time.sleep(0.5)  # the actors' first (empty) rounds are not part of the figures
        _CountedEnricher.profiling = args.profile
        cpu0, rounds0, sql0 = enricher_cpu(), _CountedEnricher.rounds, \
            _CountedEnricher.statements
        start = time.monotonic()
        tick = 0
        while time.monotonic() - start < args.seconds:
            for pipeline, _, _ in parts:
                entries = [entry(sent + i, domains) for i in range(args.burst)]
                stored = pipeline.inbox.put(pipeline.org, entries)
                if args.stored:
                    pipeline.wake.stored(stored)
                else:
                    pipeline.wake.set()
                sent += args.burst
            tick += 1
            time.sleep(max(0.0, start + tick * interval - time.monotonic()))
        deadline = time.monotonic() + 60
        while sum(s.records for _, s, _ in parts) < sent and time.monotonic() < deadline:
            time.sleep(0.01)
        done = sum(s.records for _, s, _ in parts)
        cpu, rounds, sql = (enricher_cpu() - cpu0, _CountedEnricher.rounds - rounds0,
                            _CountedEnricher.statements - sql0)
        for pipeline, _, actor in parts:
            stop_org(actor).get(timeout=10)
            pipeline.release()
        supervisor.stop(timeout=10)
        database.close()

    print(f"orgs={args.orgs} rate={args.rate}/s/org burst={args.burst} "
          f"seconds={args.seconds} workers={args.workers} "
          f"wake={'stored' if args.stored else 'set'}{' cold' if args.cold else ''}")
    print(f"records sent {sent}, enriched {done}")
    print(f"enricher CPU {cpu * 1e6 / max(done, 1):.0f} µs/record "
          f"({cpu:.2f} s total, {100 * cpu / args.seconds:.1f} % of a core)")
    print(f"rounds {rounds / max(done, 1):.2f} per record, "
          f"SQL statements {sql / max(done, 1):.2f} per record")
    if _CountedEnricher.profiles:
        stats = pstats.Stats(_CountedEnricher.profiles[0])
        for profile in _CountedEnricher.profiles[1:]:
            stats.add(profile)
        stats.sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
