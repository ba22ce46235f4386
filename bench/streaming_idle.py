"""Memory, threads and CPU of N idle subscribed orgs (default 200) in one process.

devorg runs in a subprocess (`ilyd devorg --orgs N`), so the figures are the
subscribers' alone: one BayeuxClient per org (all of them on the process's shared
Bayeux loop), every one handshaken, subscribed and holding a long poll.

    .venv/bin/python bench/streaming_idle.py [N] [IDLE_SECONDS] [WORKERS] [LATENCY_MS]

WORKERS: the shared loop's worker threads (default: ilyd's own number). LATENCY_MS:
devorg answers every CometD request that much later (a fault rule), as a Salesforce
instance a WAN away would (default 0: loopback).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
import structlog

from ilyd.salesforce.auth import make_token_provider
from ilyd.salesforce.bayeux import BayeuxClient
from ilyd.salesforce.bayeux_hub import WORKERS, hub
from ilyd.salesforce.rest import RestClient

SETTLE_SECONDS = 3.0


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(n: int, idle: float, workers: int, latency_ms: float) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with tempfile.TemporaryDirectory() as tmp:
        creds_path = Path(tmp) / "creds.json"
        dev = subprocess.Popen(
            [sys.executable, "-m", "ilyd", "devorg", "--listen", "127.0.0.1:0", "--orgs",
             str(n), "--credentials-out", str(creds_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            while not creds_path.exists() or not creds_path.read_text().strip().endswith("}"):
                time.sleep(0.1)
            creds = json.loads(creds_path.read_text())
            base_rss, base_threads = rss_mib(), threading.active_count()
            hub(workers)  # before the clients, which would start it with its default
            clients = []
            for org in creds["orgs"]:
                tp = make_token_provider(
                    "password", login_url=org["login_url"], client_id=org["client_id"],
                    client_secret=org["client_secret"], username=org["username"],
                    password=org["password"], org=org["name"])
                rest = RestClient(org["name"], tp, export_usage=False)
                rest.create("PushTopic", {"Name": "IlyLeadChanges", "ApiVersion": 62.0,
                                          "Query": "SELECT Id, Email FROM Lead"})
                rest.close()
                clients.append(BayeuxClient(
                    f"{org['instance_url']}/cometd/62.0", channels=["/topic/IlyLeadChanges"],
                    on_events=lambda _events: None,
                    access_token=lambda tp=tp: tp.token().access_token, org=org["name"]))
            if latency_ms:
                requests.post(f"{creds['admin']}/faults", timeout=10, json={
                    "path_prefix": "/cometd/", "kind": "latency",
                    "delay": latency_ms / 1000}).raise_for_status()
            # Every org's token is in hand: what is timed from here is streaming alone.
            start = time.monotonic()
            for client in clients:
                client.start()
            while sum(c.state == "connected" for c in clients) < n:
                time.sleep(0.01)
            connect_time = time.monotonic() - start
            # Connected means subscribed; the first /meta/connect (answered at once) and
            # the held one after it are still to come: idle is measured after them.
            time.sleep(SETTLE_SECONDS)
            cpu0, t0 = cpu_seconds(), time.monotonic()
            time.sleep(idle)
            cpu = (cpu_seconds() - cpu0) / (time.monotonic() - t0)
            rss, threads = rss_mib(), threading.active_count()
            stop_start = time.monotonic()
            for client in clients:
                client.stop(timeout=5)
            stop_time = time.monotonic() - stop_start
        finally:
            # Its data is thrown away; SIGTERM may land while its threads answer the
            # clients' goodbyes, which devorg's main thread can miss.
            dev.kill()
            dev.wait(timeout=30)
    print(f"orgs subscribed:      {n} (all connected {connect_time:.2f} s after starting"
          " them together)")
    print(f"RSS:                  {rss:.1f} MiB ({rss - base_rss:.1f} MiB for the subscribers,"
          f" {(rss - base_rss) * 1024 / n:.0f} KiB per org)")
    print(f"threads:              {threads} ({threads - base_threads} for the subscribers)")
    print(f"CPU while idle:       {cpu * 100:.2f} % of one core over {idle:.0f} s")
    print(f"stop, every org:      {stop_time:.2f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200,
         float(sys.argv[2]) if len(sys.argv) > 2 else 10.0,
         int(sys.argv[3]) if len(sys.argv) > 3 else WORKERS,
         float(sys.argv[4]) if len(sys.argv) > 4 else 0.0)
