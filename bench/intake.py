"""CPU per streamed event on the intake path: Bayeux connect reply → committed inbox rows.

Two figures, each as CPU microseconds per event of the threads that do the work:

- `store`: `SubscriptionLoop.store` (→ `Inbox.put`) on the calling thread against a real
  SQLite file, for batches of 1 (what a quiet org's connect replies carry) and of 20;
  a fifth of the events change a record that is still pending (the merge path).
- `stream`: a `SubscriptionLoop` connected to a canned Bayeux server (a child process,
  so its CPU is not ours) that answers every /meta/connect at once with `--per-connect`
  new PushTopic events; the CPU of the client's connect thread (`bayeux-…`) and its
  dispatcher thread (`bayeux-dispatch-…`) is read per thread.

    .venv/bin/python bench/intake.py [--events 5000] [--per-connect 1]
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


# -- the canned Bayeux server (child process) -----------------------------------------------

def serve(per_connect: int, total: int, pace: float) -> None:
    """Answer handshake/subscribe, then every connect with `per_connect` new events."""
    state = {"next": 0}
    lock = threading.Lock()

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
                    with lock:
                        first = state["next"]
                        n = max(0, min(per_connect, total - first))
                        state["next"] = first + n
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


def _thread_cpu(name: str) -> float:
    for t in threading.enumerate():
        if t.name == name and t.ident is not None:
            return time.clock_gettime(time.pthread_getcpuclockid(t.ident))
    raise LookupError(name)


def bench_stream(root: Path, events: int, per_connect: int,
                 pace: float) -> tuple[float, float, float]:
    """(connect thread, dispatch thread, wall s) per event through a live SubscriptionLoop."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(per_connect), str(events), str(pace)],
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
        c0, d0, w0 = _thread_cpu(f"bayeux-{ORG}"), _thread_cpu(f"bayeux-dispatch-{ORG}"), \
            time.perf_counter()
        base = inbox.depth(ORG)
        while inbox.depth(ORG) < events:
            time.sleep(0.01)
        c1, d1, w1 = _thread_cpu(f"bayeux-{ORG}"), _thread_cpu(f"bayeux-dispatch-{ORG}"), \
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
    parser.add_argument("--pace-ms", type=float, default=0.0,
                        help="hold each connect this long before its events (a quiet org)")
    parser.add_argument("--serve", nargs=3, type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), int(args.serve[1]), args.serve[2])
        return
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for batch in (1, 20):
            # The machine is shared: the least of a few runs is the code's own cost.
            us = min(bench_store(root / str(r), args.events, batch) for r in range(args.rounds))
            print(f"store   batch {batch:3d}: {us:7.1f} µs CPU/event  (SubscriptionLoop.store,"
                  f" least of {args.rounds})")
        conn, disp, wall = bench_stream(root, args.events, args.per_connect,
                                         args.pace_ms / 1000.0)
        print(f"stream  {args.per_connect:3d}/connect: connect thread {conn:7.1f} µs/event,"
              f" dispatch thread {disp:7.1f} µs/event, total {conn + disp:7.1f}"
              f"  ({args.events / wall:,.0f} events/s)")


if __name__ == "__main__":
    main()
