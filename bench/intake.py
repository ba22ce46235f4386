"""CPU per streamed event on the intake path: Bayeux connect reply → committed inbox rows.

Two figures, each as CPU microseconds per event of the threads that do the work:

- `store`: `SubscriptionLoop.store` (→ `Inbox.put`) on the calling thread against a real
  SQLite file, for batches of 1 (what a quiet org's connect replies carry) and of 20;
  a fifth of the events change a record that is still pending (the merge path).
- `stream`: a `SubscriptionLoop` connected to a canned Bayeux server (a child process,
  so its CPU is not ours) that answers every /meta/connect at once with `--per-connect`
  new PushTopic events; the CPU of the process's shared Bayeux loop is read per thread:
  its selector thread (`bayeux-hub`) and its workers (`bayeux-worker-…`, which read the
  replies and store the events), the only threads streaming uses. `--pace-ms` holds each
  connect that long first (a quiet org: cold caches, as in the daemon); `--rate` makes
  events due at that rate instead, a connect returning all that are due.
- `orgs` (instead of `stream`, with `--orgs N`): N threads, one per org with its own
  SubscriptionLoop and Inbox on one database, each storing an event every 1/`--org-rate`
  s beside `--busy` threads that keep the GIL busy — the daemon's contention.

    .venv/bin/python bench/intake.py [--events 5000] [--per-connect 1] [--pace-ms 20]
    .venv/bin/python bench/intake.py --stream-only --orgs 100 --org-rate 3 --busy 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import structlog

from ilyd.actors.subscriber import SubscriptionLoop
from ilyd.salesforce.bayeux import BayeuxEvent
from ilyd.store import Database
from ilyd.store.inbox import Inbox

TOPIC = "/topic/IlyLeadChanges"
ORG = "bench"


def _iso_z(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def lead_message(i: int, replay_id: int, record: int | None = None) -> dict[str, object]:
    """A PushTopic event as Salesforce (and devorg) deliver it."""
    rid = f"00Q{(record if record is not None else i):015d}"
    return {
        "channel": TOPIC,
        "data": {
            "event": {"createdDate": _iso_z(datetime.now(UTC)), "type": "created",
                      "replayId": replay_id},
            "sobject": {"Id": rid, "FirstName": "Ada", "LastName": f"Lovelace{i}",
                        "Email": f"ada{i}@example{i % 97}.com", "Company": f"Example {i}",
                        "Website": f"https://www.example{i % 97}.com", "Country": "GB"},
        },
    }


def _loop(inbox: Inbox, endpoint: str) -> SubscriptionLoop:
    return SubscriptionLoop(ORG, endpoint, {TOPIC: "Lead"}, inbox, access_token=lambda: "t")


def bench_store(root: Path, events: int, batch: int) -> float:
    """CPU µs per event of `SubscriptionLoop.store` with batches of `batch` events."""
    db = Database(root / f"store-{batch}.db")
    inbox = Inbox(db)
    loop = _loop(inbox, "http://127.0.0.1:9/cometd/62.0")
    messages = [lead_message(i, i + 1, record=i - 3 if i % 5 == 4 else i) for i in range(events)]
    batches = [[BayeuxEvent.from_message(m) for m in messages[k:k + batch]]
               for k in range(0, events, batch)]
    start = time.thread_time()
    for b in batches:
        loop.store(b)
    cpu = time.thread_time() - start
    db.close()
    return cpu / events * 1e6


def bench_orgs(root: Path, orgs: int, rate: float, seconds: float,
               busy: int) -> tuple[float, int, str]:
    """`orgs` threads, each storing one event per 1/`rate` s through its own
    SubscriptionLoop into one shared inbox, beside `busy` threads that keep the GIL busy
    (the daemon's other actors). Returns (CPU µs per event of the storing threads,
    events, the inbox's transactions per put if it groups them)."""
    db = Database(root / "orgs.db")
    inbox = Inbox(db)  # each org has its own Inbox on the one database, as in the daemon
    stop = threading.Event()
    cpu: list[float] = []
    counts: list[int] = []
    lock = threading.Lock()

    def org(k: int) -> None:
        loop = SubscriptionLoop(f"org{k}", "http://127.0.0.1:9/cometd/62.0", {TOPIC: "Lead"},
                                Inbox(db), access_token=lambda: "t")
        interval = 1.0 / rate
        next_at = time.monotonic() + interval * k / orgs
        spent, n = 0.0, 0
        while not stop.is_set():
            if stop.wait(max(0.0, next_at - time.monotonic())):
                break
            next_at += interval
            event = BayeuxEvent.from_message(lead_message(k * 1_000_000 + n, n + 1))
            t = time.thread_time()
            loop.store([event])
            spent += time.thread_time() - t
            n += 1
        with lock:
            cpu.append(spent)
            counts.append(n)

    def spin() -> None:
        while not stop.is_set():
            sum(i * i for i in range(2000))

    threads = [threading.Thread(target=org, args=(k,)) for k in range(orgs)]
    threads += [threading.Thread(target=spin) for _ in range(busy)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    db.close()
    group = getattr(inbox, "_group", None)
    grouping = f", {group.requests / max(1, group.groups):.2f} puts per transaction" \
        if group is not None else ""
    events = sum(counts)
    return sum(cpu) / max(1, events) * 1e6, events, grouping


# -- the canned Bayeux server (child process) -----------------------------------------------

def serve(per_connect: int, total: int, pace: float, rate: float) -> None:
    """Answer handshake/subscribe, then every connect with `per_connect` new events —
    or, with `rate`, with every event due by then (event i is due i/rate s after the
    first connect), holding the connect until one is."""
    state = {"next": 0, "t0": 0.0}
    lock = threading.Lock()

    def due() -> tuple[int, int]:
        with lock:
            if not state["t0"]:
                state["t0"] = time.monotonic()
            first = state["next"]
            if rate:
                wait = state["t0"] + first / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                n = int((time.monotonic() - state["t0"]) * rate) + 1 - first
            else:
                n = per_connect
            n = max(0, min(n, total - first))
            state["next"] = first + n
            return first, n

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            out: list[dict[str, object]] = []
            for m in body:
                ch = m["channel"]
                if ch == "/meta/handshake":
                    out.append({"channel": ch, "id": m["id"], "successful": True,
                                "version": "1.0", "clientId": "bench-client",
                                "supportedConnectionTypes": ["long-polling"],
                                "advice": {"reconnect": "retry", "interval": 0,
                                           "timeout": 110000}})
                elif ch == "/meta/connect":
                    first, n = due()
                    # A quiet org: the event arrives a while after the connect went out.
                    time.sleep(1.0 if n == 0 else pace)
                    out.extend(lead_message(i, i + 1) for i in range(first, first + n))
                    out.append({"channel": ch, "id": m["id"], "successful": True,
                                "clientId": "bench-client"})
                else:
                    out.append({"channel": ch, "id": m["id"], "successful": True,
                                "clientId": "bench-client",
                                "subscription": m.get("subscription")})
            data = json.dumps(out).encode()
            # One write: headers and body apart would wait on the client's delayed ACK.
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(data), data))

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def _thread_cpu(prefix: str) -> float:
    """CPU seconds of the threads whose names start with `prefix`."""
    found = [time.clock_gettime(time.pthread_getcpuclockid(t.ident))
             for t in threading.enumerate() if t.name.startswith(prefix) and t.ident]
    if not found:
        raise LookupError(prefix)
    return sum(found)


def bench_stream(root: Path, events: int, per_connect: int, pace: float = 0.0,
                 rate: float = 0.0) -> tuple[float, float, float]:
    """(selector thread, worker threads, wall s) per event through a live SubscriptionLoop."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(per_connect), str(events), str(pace),
         str(rate)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        db = Database(root / "stream.db")
        inbox = Inbox(db)
        loop = _loop(inbox, f"http://127.0.0.1:{port}/cometd/62.0")
        loop.start()
        deadline = time.monotonic() + 30
        while loop.client.state != "connected" and time.monotonic() < deadline:
            time.sleep(0.001)
        # The loop has been running since the first connect: read the threads' CPU once
        # the first event is in, and again once the last is.
        while inbox.depth(ORG) < 1:
            time.sleep(0.001)
        c0, d0, w0 = _thread_cpu("bayeux-hub"), _thread_cpu("bayeux-worker-"), \
            time.perf_counter()
        base = inbox.depth(ORG)
        while inbox.depth(ORG) < events:
            time.sleep(0.01)
        c1, d1, w1 = _thread_cpu("bayeux-hub"), _thread_cpu("bayeux-worker-"), \
            time.perf_counter()
        loop.stop()
        db.close()
    finally:
        child.terminate()
        child.wait(10)
    n = events - base
    return (c1 - c0) / n * 1e6, (d1 - d0) / n * 1e6, (w1 - w0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--per-connect", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stream-only", action="store_true")
    parser.add_argument("--orgs", type=int, default=0,
                        help="instead of the stream: this many orgs' threads storing events")
    parser.add_argument("--org-rate", type=float, default=3.0, help="events/s per org")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--busy", type=int, default=2,
                        help="threads keeping the GIL busy beside the orgs'")
    parser.add_argument("--pace-ms", type=float, default=0.0,
                        help="hold each connect this long before its events (a quiet org)")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="events/s of one org (a connect returns every event due)")
    parser.add_argument("--serve", nargs=4, type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), int(args.serve[1]), args.serve[2], args.serve[3])
        return
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for batch in () if args.stream_only else (1, 20):
            # The machine is shared: the least of a few runs is the code's own cost.
            us = min(bench_store(root / str(r), args.events, batch) for r in range(args.rounds))
            print(f"store   batch {batch:3d}: {us:7.1f} µs CPU/event  (SubscriptionLoop.store,"
                  f" least of {args.rounds})")
        if args.orgs:
            us, n, grouping = bench_orgs(root, args.orgs, args.org_rate, args.seconds,
                                         args.busy)
            print(f"orgs    {args.orgs} x {args.org_rate:g}/s, {args.busy} busy threads:"
                  f" {us:7.1f} µs CPU/event in store ({n} events{grouping})")
            return
        conn, disp, wall = bench_stream(root, args.events, args.per_connect,
                                         args.pace_ms / 1000.0, args.rate)
        shape = f"{args.rate:g} events/s" if args.rate else f"{args.per_connect}/connect"
        print(f"stream  {shape}: selector thread {conn:7.1f} µs/event,"
              f" worker threads {disp:7.1f} µs/event, total {conn + disp:7.1f}"
              f"  ({args.events / wall:,.0f} events/s)")


if __name__ == "__main__":
    main()
