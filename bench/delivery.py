"""Daemon CPU per event on the delivery path: Bayeux reply → inbox row → enriched →
handed to the writer.

Starts devorg in a child process (its CPU is not counted) with K orgs, installs ilyd into
each, and runs in this process one `OrgActor` per org with its real feed (the
`SubscriberComponent`: the process's Bayeux hub, `SubscriptionLoop.store` → `Inbox.put`)
and real `EnricherComponent`; the writer is a stand-in part that confirms the rows it is
handed and counts them (the writer's flush is not measured here). Records are created
inside devorg at `--rate` per second per org (bench/server_traffic.py), so at a few per
second each /meta/connect reply carries about one event.

Prints the CPU time of this process's threads while the traffic ran (the traffic
thread's own excluded) per event handed to the writer, split by thread: the Bayeux
selector (`bayeux-hub`), its workers (`bayeux-worker-…`: reading replies, storing them,
sending the next connect), the org actors (`org-…`: claim, enrich, hand-off, the
stand-in's confirm) and the rest (timers, lookup pool). `--profile` also records the
process with py-spy (GIL-holding samples) and prints the 25 functions seen most, by own
samples and with callees.

    .venv/bin/python bench/delivery.py                          # 20 orgs × 5/s, 20 s
    .venv/bin/python bench/delivery.py --orgs 50 --rate 5 --seconds 30 --profile
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pykka
from daemon_harness import DevOrgProcess, free_port, provision, write_config
from server_traffic import ServerTraffic

from ilyd.actors.component import Component
from ilyd.actors.context import OrgContext, OrgSecrets
from ilyd.actors.enricher import EnricherComponent
from ilyd.actors.messages import GetParts, OrgReport
from ilyd.actors.org import OrgActor, stop_org
from ilyd.actors.subscriber import SubscriberComponent, SubscriptionLoop
from ilyd.actors.writer import Enriched
from ilyd.config import load_config
from ilyd.daemon.logs import configure_logging
from ilyd.pipeline.enricher import Enricher
from ilyd.pipeline.runtime import OrgPipeline
from ilyd.pipeline.wakeup import Wake
from ilyd.salesforce.bayeux import BayeuxClient
from ilyd.salesforce.bayeux_hub import BayeuxHub
from ilyd.salesforce.bayeux_transport import LongPollingTransport
from ilyd.store import Database
from ilyd.store.inbox import Inbox


class _Sink(Component):
    """Stands in for the writer: confirms what it is handed, counts it."""

    cpu = 0.0  # thread CPU of every stand-in's confirms (the writer's work, not the path's)

    def __init__(self, pipeline: OrgPipeline) -> None:
        self.pipeline = pipeline
        self.records = 0

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Enriched):
            began = time.thread_time()
            self.pipeline.inbox.confirm([w.item for w in message.items])
            self.records += len(message.items)
            _Sink.cpu += time.thread_time() - began  # one org thread at a time per sink
        return None


class _Supervisor(pykka.ThreadingActor):
    """Takes the org's reports; remembers each org's last connection state."""

    def __init__(self) -> None:
        super().__init__()
        self.connection: dict[str, Any] = {}

    def on_receive(self, message: Any) -> None:
        if isinstance(message, OrgReport):
            detail = dict(message.detail)
            if "connection" in detail:
                self.connection[str(message.org)] = detail["connection"]


def _thread_cpu() -> dict[str, float]:
    """CPU seconds per group of this process's threads (by thread name)."""
    groups: dict[str, float] = collections.defaultdict(float)
    for thread in threading.enumerate():
        if thread.ident is None:
            continue
        name = thread.name
        group = ("bayeux-hub" if name == "bayeux-hub" else
                 "bayeux-worker" if name.startswith("bayeux-worker") else
                 "org" if name.startswith("org-") else
                 "traffic" if name == "server-traffic" else "other")
        with contextlib.suppress(OSError):  # the thread ended meanwhile
            groups[group] += time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return groups


def _print_profile(raw: Path, top: int = 25) -> None:
    """The functions in most of py-spy's raw samples: own samples, and with callees."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [f.rsplit(":", 1)[0] for f in stack.split(";")[1:]]  # thread name first
        if frames:
            own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    print(f"\npy-spy --gil: {total} samples")
    for title, counter in (("own", own), ("with callees", inclusive)):
        print(f"top {top} by {title}:")
        for frame, n in counter.most_common(top):
            print(f"  {100 * n / max(total, 1):5.1f} %  {frame}")


class _Profiles:
    """--cprofile: a cProfile per thread (in thread CPU time) around the hub's steps and
    selector rounds and the org actors' messages."""

    def __init__(self) -> None:
        self.on = False
        self._local = threading.local()
        self._all: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def wrap(self, owner: type, name: str) -> None:
        inner = getattr(owner, name)

        def profiled(*args: Any, **kwargs: Any) -> Any:
            if not self.on:
                return inner(*args, **kwargs)
            profile = getattr(self._local, "profile", None)
            if profile is None:
                profile = self._local.profile = cProfile.Profile(time.thread_time)
                with self._lock:
                    self._all.append(profile)
            return profile.runcall(inner, *args, **kwargs)

        setattr(owner, name, profiled)

    def print(self, top: int = 25) -> None:
        if not self._all:
            return
        stats = pstats.Stats(self._all[0])
        for profile in self._all[1:]:
            stats.add(profile)
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)


class _Split:
    """--split: thread CPU inside a few functions of the path (nested ones count in
    their callers too), per event."""

    def __init__(self) -> None:
        self.on = False
        self.cpu: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def wrap(self, owner: type, name: str) -> None:
        inner = getattr(owner, name)
        label = f"{owner.__name__}.{name}"

        def timed(*args: Any, **kwargs: Any) -> Any:
            if not self.on:
                return inner(*args, **kwargs)
            began = time.thread_time()
            try:
                return inner(*args, **kwargs)
            finally:
                spent = time.thread_time() - began
                with self._lock:
                    self.cpu[label] += spent

        setattr(owner, name, timed)

    def print(self, events: int) -> None:
        for label, cpu in self.cpu.items():
            print(f"  {label:40s} {cpu * 1e6 / max(events, 1):7.0f} µs/event")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=20)
    parser.add_argument("--rate", type=float, default=5.0, help="records/s per org")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--profile", action="store_true",
                        help="py-spy the traffic window; print the top 25 functions")
    parser.add_argument("--cprofile", action="store_true",
                        help="cProfile the hub's steps and the org actors' messages")
    parser.add_argument("--split", action="store_true",
                        help="thread CPU inside the path's main functions, per event")
    args = parser.parse_args()
    split = _Split()
    if args.split:
        for owner, name in ((BayeuxHub, "_select_once"), (BayeuxHub, "_run_step"),
                            (LongPollingTransport, "receive"), (SubscriptionLoop, "store"),
                            (Inbox, "put"), (Wake, "stored"), (BayeuxClient, "_send_connect"),
                            (OrgActor, "on_receive"), (EnricherComponent, "on_receive"),
                            (Inbox, "claim"), (Enricher, "_enrich"), (Enricher, "_finish"),
                            (_Sink, "on_receive")):
            split.wrap(owner, name)
    profiles = _Profiles()
    if args.cprofile:
        profiles.wrap(BayeuxHub, "_run_step")
        profiles.wrap(BayeuxHub, "_select_once")
        profiles.wrap(OrgActor, "on_receive")
    configure_logging("json", "error", stream="stderr")

    with tempfile.TemporaryDirectory() as tmp, DevOrgProcess(args.orgs) as dev:
        root = Path(tmp)
        config_path = write_config(root, dev, free_port())
        provision(config_path)
        config = load_config(config_path)
        database = Database(root / "state" / "ilyd.db")
        supervisor = _Supervisor.start()
        parts: list[tuple[OrgPipeline, _Sink, pykka.ActorRef[Any]]] = []
        for org in config.orgs:
            pipeline = OrgPipeline(org, OrgSecrets.read(org), database)
            sink = _Sink(pipeline)

            def enricher(context: OrgContext, pipeline: OrgPipeline = pipeline,
                         sink: _Sink = sink) -> Component:
                return EnricherComponent(context, pipeline.acquire(), sink.ref)

            def feed(context: OrgContext, pipeline: OrgPipeline = pipeline) -> Component:
                return SubscriberComponent(context, pipeline.acquire())

            actor = OrgActor.start(org, 1, supervisor, database, factories=[
                ("writer", lambda _context, sink=sink: sink), ("enricher", enricher),
                ("feed", feed)])
            actor.ask(GetParts(), timeout=60)
            parts.append((pipeline, sink, actor))
        proxy = supervisor.proxy()
        deadline = time.monotonic() + 60 + args.orgs
        while time.monotonic() < deadline:
            states = proxy.connection.get(timeout=10)
            if sum(1 for s in states.values() if s == "connected") >= args.orgs:
                break
            time.sleep(0.2)
        else:
            raise SystemExit(f"not every org connected: {states}")
        time.sleep(1.0)  # the first (empty) rounds are not part of the figures

        delivered0 = sum(s.records for _, s, _ in parts)
        cpu0, threads0, sink0 = time.process_time(), _thread_cpu(), _Sink.cpu
        spy = None
        raw = root / "profile.txt"
        if args.profile:
            spy = subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--pid",
                 str(os.getpid()), "--gil", "--format", "raw", "--rate", "200",
                 "--duration", str(int(args.seconds)), "--output", str(raw)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        profiles.on = args.cprofile
        split.on = args.split
        traffic = ServerTraffic(dev.admin, [o.name for o in dev.orgs], rate=args.rate).start()
        started = time.monotonic()
        time.sleep(args.seconds)
        traffic_cpu = _thread_cpu().get("traffic", 0.0)  # its thread ends with stop()
        traffic.stop()
        created = sum(len(f.stats.created) for f in traffic.feeds)
        deadline = time.monotonic() + 60
        while (sum(s.records for _, s, _ in parts) - delivered0 < created
               and time.monotonic() < deadline):
            time.sleep(0.01)
        elapsed = time.monotonic() - started
        profiles.on = split.on = False
        delivered = sum(s.records for _, s, _ in parts) - delivered0
        cpu, threads, sink = time.process_time() - cpu0, _thread_cpu(), _Sink.cpu - sink0
        if spy is not None:
            spy.wait(timeout=args.seconds + 60)
        for pipeline, _, actor in parts:
            stop_org(actor).get(timeout=10)
            pipeline.release()
        supervisor.stop(timeout=10)
        database.close()

        by_group = {g: threads.get(g, 0.0) - threads0.get(g, 0.0)
                    for g in ("bayeux-hub", "bayeux-worker", "org", "other")}
        by_group["traffic"] = traffic_cpu
        ours = cpu - by_group["traffic"]
        n = max(delivered, 1)
        print(f"orgs={args.orgs} rate={args.rate}/s/org seconds={args.seconds}: "
              f"created {created}, handed to the writer {delivered} ({elapsed:.1f} s)")
        print(f"CPU {ours * 1e6 / n:.0f} µs/event ({ours:.2f} s, "
              f"{100 * ours / elapsed:.1f} % of a core; traffic thread excluded)")
        print("  " + ", ".join(f"{g} {by_group[g] * 1e6 / n:.0f}"
                               for g in ("bayeux-hub", "bayeux-worker", "org", "other"))
              + " µs/event")
        print(f"  without the stand-in writer's confirms ({sink * 1e6 / n:.0f} µs/event): "
              f"{(ours - sink) * 1e6 / n:.0f} µs/event")
        if spy is not None and raw.exists():
            _print_profile(raw)
        profiles.print()
        split.print(delivered)


if __name__ == "__main__":
    main()
