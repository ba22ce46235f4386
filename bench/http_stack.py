"""CPU per call of ilyd's HTTP stack (`OrgHttp.json` → `DirectSession` →
`KeepAliveConnection` → `ilyd.salesforce.http11`) against the bare exchange under it.

The call is the writer's sObject Collections PATCH of 10 records (bench/http_exchange.py's
bodies; the records passed as Python objects, as the writer does). A server in a child
process answers every request with the same bytes (devorg's or Salesforce's framing),
so only this process's CPU is counted.

    .venv/bin/python bench/http_stack.py [--calls 3000] [--rounds 3] [--profile]

Prints µs of CPU per call, the best of the rounds: the bare `http11` exchange (the body
already encoded), `OrgHttp.json`, and what the stack adds. `--profile` prints the
stack's top 25 functions (cProfile, own time).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import multiprocessing
import pstats
import socket
import threading
import time
from collections.abc import Callable

from http_exchange import _COLLECTIONS_BODY, EXCHANGES, _hand_written, answer

from ilyd.salesforce.http import OrgHttp
from ilyd.salesforce.token import Token

_PATH = "composite/sobjects"
_RECORDS = json.loads(_COLLECTIONS_BODY)


class _StaticTokens:
    """A token that never expires (no OAuth in this bench)."""

    def __init__(self, instance_url: str) -> None:
        self._token = Token("00D000000000001!AQ4AQFq8Bc1T", instance_url, time.time())

    def token(self) -> Token:
        return self._token

    def refresh(self, stale: Token | None = None) -> Token:
        return self._token


def _stack(port: int) -> tuple[Callable[[], object], OrgHttp]:
    http = OrgHttp("bench", _StaticTokens(f"http://127.0.0.1:{port}"), api_version="62.0",
                   export_usage=False)
    return lambda: http.json("collections", "PATCH", _PATH, json=_RECORDS), http


def _serve_each(listener: socket.socket, reply: bytes) -> None:
    """Answer every request with `reply`, a thread per connection (the bare client and
    the stack each keep theirs open); a child process."""
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=answer, args=(conn, reply), daemon=True).start()


def _bare(port: int) -> Callable[[], object]:
    exchange = _hand_written(port)
    method, target, body, _ = EXCHANGES["collections PATCH"]
    return lambda: exchange(method, target, body)


def _cpu_per_call(call: Callable[[], object], count: int) -> float:
    for _ in range(200):  # warm up: connection, caches
        call()
    began = time.process_time()
    for _ in range(count):
        call()
    return (time.process_time() - began) * 1e6 / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    _, _, _, replies = EXCHANGES["collections PATCH"]
    for framing, reply in replies.items():
        listener = socket.create_server(("127.0.0.1", 0))
        server = multiprocessing.Process(target=_serve_each, args=(listener, reply), daemon=True)
        server.start()
        port = listener.getsockname()[1]
        try:
            bare = stack = float("inf")
            call, http = _stack(port)
            exchange = _bare(port)
            for _ in range(args.rounds):  # interleaved: load from others hits both alike
                bare = min(bare, _cpu_per_call(exchange, args.calls))
                stack = min(stack, _cpu_per_call(call, args.calls))
            print(f"collections PATCH {framing:<11} bare http11 {bare:6.1f} µs/call, "
                  f"OrgHttp.json {stack:6.1f} µs/call, the stack adds {stack - bare:6.1f}")
            if args.profile:
                profile = cProfile.Profile(time.process_time)
                for _ in range(args.calls):
                    profile.runcall(call)
                pstats.Stats(profile).sort_stats("tottime").print_stats(25)
            http.close()
        finally:
            server.terminate()
            server.join()
            listener.close()


if __name__ == "__main__":
    main()
