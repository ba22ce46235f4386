"""Simple REST calls per second against devorg from a few client threads.

The clients run in a separate process (http.client, keep-alive), so that the figure is
the server's, not the GIL shared with Python clients.

Usage: .venv/bin/python bench/devorg_rest.py [--threads 4] [--seconds 5]
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import threading
import time

import requests

from ilyd.devorg import DevOrg


def clients(port: int, path: str, token: str, threads: int, seconds: float,
            out: multiprocessing.Queue) -> None:
    counts = [0] * threads
    errors = [0] * threads
    stop = time.monotonic() + seconds

    def worker(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        headers = {"Authorization": f"Bearer {token}"}
        while time.monotonic() < stop:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                counts[n] += 1
            else:
                errors[n] += 1

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    started = time.monotonic()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put((sum(counts), sum(errors), time.monotonic() - started))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with DevOrg(seed_records=100) as dev:
        org = dev.orgs[0]
        token = requests.post(dev.url + "/services/oauth2/token", data={
            "grant_type": "refresh_token", "client_id": org.client_id,
            "refresh_token": org.refresh_token}).json()["access_token"]
        base = "/services/data/v59.0"
        record_id = requests.get(dev.url + base + "/query",
                                 params={"q": "SELECT Id FROM Account LIMIT 1"},
                                 headers={"Authorization": f"Bearer {token}"}
                                 ).json()["records"][0]["Id"]
        # the bench makes far more calls than a day's default allowance
        requests.patch(dev.admin + "/orgs/org0/settings", json={"api_limit": 100_000_000})
        port = int(dev.url.rsplit(":", 1)[1])
        for label, path in (("GET sobjects/Account/{id}", f"{base}/sobjects/Account/{record_id}"),
                            ("GET limits", f"{base}/limits")):
            out: multiprocessing.Queue = multiprocessing.Queue()
            proc = multiprocessing.Process(target=clients, args=(
                port, path, token, args.threads, args.seconds, out))
            proc.start()
            calls, errors, elapsed = out.get()
            proc.join()
            print(f"devorg REST {label}: {calls / elapsed:,.0f} calls/s "
                  f"({args.threads} keep-alive client threads in another process, "
                  f"{elapsed:.1f} s, {errors} errors)")


if __name__ == "__main__":
    main()
