"""Real-time enrichment benchmark: N orgs on one devorg, R records/s per org, T seconds.

Starts devorg with N orgs, installs ilyd into each, runs `ilyd run` as a child process,
creates records as a user in every org, then reads each record's history back from
devorg and prints create → written latency (p50 / p99 / max), API calls per event, and
the daemon's CPU time and RSS. The latency is split from the daemon's histograms (change →
inbox, inbox → written) and devorg's delivery timing (GET /_devorg/streaming/<org>): how
long each reply's oldest event waited in devorg for the daemon's next connect, and how
long devorg took to answer once both were there. Traffic starts once every org is
subscribed (or polling), so the figures are the steady state, not the daemon's start.

    .venv/bin/python bench/realtime.py --orgs 1 --rate 50 --seconds 30
    .venv/bin/python bench/realtime.py --orgs 1 --rate 500 --seconds 20   # batching
    .venv/bin/python bench/realtime.py --orgs 100 --rate 5 --seconds 30
    .venv/bin/python bench/realtime.py --all                              # the three above
    .venv/bin/python bench/realtime.py --orgs 100 --rate 5 --seconds 120 --api-limit 200000

`--api-limit N` sets every org's daily API allowance (devorg's default is a Developer
Edition's 15,000). The writer's window widens when its projected daily calls would pass
`api_share` (0.2) of it: the bench then prints the widest window and the projected use the
orgs reported (`ilyd ctl orgs`), and the calls per day the traffic's own pace amounts to.

Records are created inside devorg (bench/server_traffic.py: one admin request per tick
for every org, each record still its own save and change event); `--client-traffic`
creates each with its own request, as `ilyd demo` does (costs the bench as much CPU as
devorg). `--vendor-delay MS` enriches from a vendor's HTTP API (a loopback server in this
process answering every domain after MS milliseconds) instead of the bundled dataset: the
lookups then wait on the network, as they do on the daemon's lookup threads. `--pin`
runs the daemon on CPU 0 and devorg and the traffic on CPU 1: the daemon alone on one
core, as on a VM where Salesforce is elsewhere.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from daemon_harness import (  # ControlClient: the daemon's control socket, as the harness's
    ControlClient,
    DevOrgProcess,
    cpu_seconds,
    free_port,
    log_problems,
    provision,
    rss_mib,
    thread_count,
    wait_ready,
    write_config,
)
from server_traffic import OrgFeed, ServerTraffic

from ilyd.commands.demo_traffic import Observer, Traffic, percentile
from ilyd.daemon.logs import configure_logging
from ilyd.devorg import DevOrg
from ilyd.errors import ControlError


def histogram(metrics_port: int, metric: str,
              label: str = "") -> tuple[float | None, float | None]:
    """p50 and p99 (bucket upper bounds) of a histogram the daemon serves; `label` (e.g.
    'op="collections_update"') picks one series."""
    text = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30).text
    buckets = []
    for line in text.splitlines():
        if line.startswith(f"{metric}_bucket") and label in line:
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((math.inf if bound == "+Inf" else float(bound),
                            float(line.rsplit(" ", 1)[1])))
    return quantiles([b for b, _ in buckets], [n for _, n in buckets])


def devorg_delivery(admin: str, orgs: list[str]) -> dict[str, list[int]]:
    """devorg's delivery timing summed over `orgs` (GET /_devorg/streaming/<org>): per
    bucket, how many replies' oldest event waited that long for the daemon's next connect
    (`connect_wait`), and how long devorg took from that connect or event to the reply
    (`answer`)."""
    total: dict[str, list[int]] = {}
    with requests.Session() as http:
        for org in orgs:
            delivery = http.get(f"{admin}/streaming/{org}", timeout=30).json()["delivery"]
            total.setdefault("bounds", delivery["bounds"])
            for key in ("connect_wait", "answer"):
                counts = total.setdefault(key, [0] * len(delivery[key]))
                for i, n in enumerate(delivery[key]):
                    counts[i] += n
    return total


def quantiles(bounds: list[float], cumulative: list[float]) -> tuple[float | None, float | None]:
    """p50 and p99 of a histogram: the upper bound of the first bucket whose cumulative
    count reaches the share (the last bound is inf)."""
    total = cumulative[-1] if cumulative else 0

    def quantile(share: float) -> float | None:
        return next((b for b, n in zip(bounds, cumulative, strict=True) if n >= share * total),
                    None)

    return (quantile(0.5), quantile(0.99)) if total else (None, None)


# One traffic thread keeps up with about this many creates per second against devorg.
_PER_THREAD = 40.0

SCENARIOS = ((1, 50.0, 30.0), (1, 500.0, 20.0), (100, 5.0, 30.0))


class Vendor:
    """A vendor's company API on loopback: every domain is a company, answered after
    `delay` seconds."""

    def __init__(self, delay: float) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def do_GET(self) -> None:
                time.sleep(delay)  # the vendor's own work and the network's
                body = json.dumps({"name": self.path.rsplit("/", 1)[-1]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def provider(self) -> str:
        """The [[defaults.enrich.provider]] table asking it, its own limits out of the way."""
        return ("[[defaults.enrich.provider]]\ntype = \"http\"\nname = \"vendor\"\n"
                f"url = \"http://127.0.0.1:{self.server.server_address[1]}/c/{{domain}}\"\n"
                "fields = { Ily_Company_Name__c = \"name\" }\n"
                "requests_per_second = 10000\nmax_concurrency = 256\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=1)
    parser.add_argument("--rate", type=float, default=50.0, help="records/s per org")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--all", action="store_true",
                        help="run 1 org x 50/s x 30 s, 1 x 500/s x 20 s, 100 x 5/s x 30 s")
    parser.add_argument("--devorg-in-process", action="store_true",
                        help="run devorg in this process with the traffic (the old set-up)")
    parser.add_argument("--client-traffic", action="store_true",
                        help="create each record with its own request (as ilyd demo does)")
    parser.add_argument("--pin", action="store_true",
                        help="daemon on CPU 0; devorg and this process on CPU 1")
    parser.add_argument("--no-cpu-pinning", action="store_true",
                        help="the daemon's [daemon] cpu_pinning = false (its threads on every"
                        " CPU; the default keeps each process on one)")
    parser.add_argument("--processes", type=int, default=None,
                        help='the daemon\'s [daemon] processes (default: its own "auto")')
    parser.add_argument("--api-limit", type=int, default=None,
                        help="every org's daily API allowance (default: devorg's 15,000)")
    parser.add_argument("--vendor-delay", type=float, default=None, metavar="MS",
                        help="enrich from a loopback vendor API answering after MS ms")
    args = parser.parse_args()
    configure_logging("console", "error")
    options = {"devorg_in_process": args.devorg_in_process,
               "client_traffic": args.client_traffic, "pin": args.pin,
               "processes": args.processes, "api_limit": args.api_limit,
               "vendor_delay": args.vendor_delay,
               "cpu_pinning": False if args.no_cpu_pinning else None}
    if args.pin:
        os.sched_setaffinity(0, {1})  # devorg, started from here, inherits it
    if not args.all:
        return run(args.orgs, args.rate, args.seconds, **options)
    status = 0
    for orgs, rate, seconds in SCENARIOS:
        status |= run(orgs, rate, seconds, **options)
        print()
    return status


def run(orgs: int, rate: float, seconds: float, devorg_in_process: bool = False,
        client_traffic: bool = False, pin: bool = False, processes: int | None = None,
        api_limit: int | None = None, vendor_delay: float | None = None, *,
        cpu_pinning: bool | None = None) -> int:
    """One scenario on a fresh devorg and daemon; prints the figures, 0 if all written."""
    root = Path(tempfile.mkdtemp(prefix="ilyd-bench-"))
    server: DevOrg | DevOrgProcess = (DevOrg(host="127.0.0.1", port=0, orgs=orgs)
                                      if devorg_in_process else DevOrgProcess(orgs))
    vendor = Vendor(vendor_delay / 1000) if vendor_delay is not None else None
    with server as dev:
        metrics_port = free_port()
        defaults = "poll_interval = 5\nworkers = 2\n" + (vendor.provider() if vendor else "")
        config = write_config(root, dev, metrics_port, defaults, processes=processes,
                              cpu_pinning=cpu_pinning)
        started = time.monotonic()
        provision(config)
        print(f"provisioned {orgs} org(s) in {time.monotonic() - started:.1f} s")
        if api_limit is not None:
            for info in dev.orgs:
                requests.patch(f"{dev.admin}/orgs/{info.name}/settings",
                               json={"api_limit": api_limit}, timeout=30).raise_for_status()
        log_path = root / "daemon.log"
        log = log_path.open("wb")
        # Under --pin the daemon starts on CPU 0 (its threads inherit it from the start).
        daemon = subprocess.Popen([*(["taskset", "-c", "0"] if pin else []), sys.executable,
                                   "-m", "ilyd", "run", "--config", str(config)],
                                  stdout=log, stderr=subprocess.STDOUT)
        try:
            took = wait_ready(daemon, root / "control.sock", orgs, timeout=60 + orgs)
        except (RuntimeError, ControlError) as exc:
            print(f"daemon not ready: {exc}; log {log_path}")
            print("\n".join(log_problems(log_path)))
            daemon.kill()
            daemon.wait(timeout=30)
            return 1
        print(f"daemon ready (every org subscribed or polling) {took:.1f} s after start")
        observers = [Observer(dev.admin, i.name, i.user_id) for i in dev.orgs]
        calls_before = sum(o.calls() for o in observers)
        cpu_before = cpu_seconds(daemon.pid)
        own_before = cpu_seconds(os.getpid(), children=False)
        dev_before = dev.cpu_seconds() if isinstance(dev, DevOrgProcess) else 0.0
        names = [i.name for i in dev.orgs]
        delivery_before = devorg_delivery(dev.admin, names)
        traffic: list[Traffic] | list[OrgFeed]
        generator: ServerTraffic | None = None
        if client_traffic:
            # Fast rates are spread over several threads per org (seeded apart).
            threads = max(1, math.ceil(rate / _PER_THREAD))
            traffic = [Traffic(dev.admin, i.name, rate=rate / threads, edits=False,
                               seed=n * 1000 + k).start()
                       for n, i in enumerate(dev.orgs) for k in range(threads)]
        else:
            generator = ServerTraffic(dev.admin, [i.name for i in dev.orgs], rate=rate).start()
            traffic = generator.feeds
        traffic_started = time.monotonic()
        # The daemon's threads (its worker processes' included) at their most while the
        # traffic runs: lookup threads are started as rounds need them.
        peak_threads = thread_count(daemon.pid)
        while time.monotonic() - traffic_started < seconds:
            time.sleep(min(1.0, max(0.0, seconds - (time.monotonic() - traffic_started))))
            peak_threads = max(peak_threads, thread_count(daemon.pid))
        if generator is not None:
            generator.stop()
        for t in traffic:
            if isinstance(t, Traffic):
                t.stop()
        elapsed = time.monotonic() - traffic_started
        cpu = cpu_seconds(daemon.pid) - cpu_before  # while the traffic ran
        # devorg and the traffic share this process (and its GIL): when it is near 100 %,
        # devorg is as much the bottleneck as the daemon.
        own = cpu_seconds(os.getpid(), children=False) - own_before
        dev_cpu = dev.cpu_seconds() - dev_before if isinstance(dev, DevOrgProcess) else None
        rss = rss_mib(daemon.pid)
        delivery = devorg_delivery(dev.admin, names)
        created = sum(len(t.stats.created) for t in traffic)
        deadline = time.monotonic() + 60
        by_org = [[t for t in traffic if t.base == o.base] for o in observers]
        observers_of = [o for o, ts in zip(observers, by_org, strict=True) for _ in ts]
        while time.monotonic() < deadline:
            for t, o in zip(traffic, observers_of, strict=True):
                o.check(list(t.stats.created))
            if sum(len(o.latency) for o in observers) >= created:
                break
            time.sleep(1.0)
        # One pass asks devorg about every record not yet seen written: with tens of
        # thousands held in wide windows at the traffic's end, a pass outlasts the
        # deadline, and the records it looked at first are looked at once more here.
        for t, o in zip(traffic, observers_of, strict=True):
            o.check(list(t.stats.created))
        missing = [(o, r) for t, o in zip(traffic, observers_of, strict=True)
                   for r in t.stats.created if r not in o.latency]
        calls = sum(o.calls() for o in observers) - calls_before  # the drain's included
        windows = org_windows(root / "control.sock") if daemon.poll() is None else []
        for observer, record in missing[:5]:
            values = observer._session.get(f"{observer.base}/records/{record}", timeout=30).json()
            shown = {k: values["record"].get(k) for k in ("Website", "Email", "Company")}
            print(f"not written: {record} {shown} history={len(values['history'])}")
        alive = daemon.poll() is None
        # inbox -> written: the daemon's own share of the latency; a Collections call's
        # answer time: devorg's share of it.
        own_p50, own_p99 = (histogram(metrics_port, "ilyd_event_to_write_seconds") if alive
                            else (None, None))
        # change -> inbox: the event's way from devorg to the inbox.
        age_p50, age_p99 = (histogram(metrics_port, "ilyd_event_age_seconds") if alive
                            else (None, None))
        call_p50, call_p99 = (histogram(metrics_port, "ilyd_sf_request_duration_seconds",
                                        'op="collections_update"') if alive else (None, None))
        stop_began = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        try:
            code: int | None = daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            code = None
        stop_took = time.monotonic() - stop_began
    latencies = [v * 1000 for o in observers for v in o.latency.values()]
    written = len(latencies)
    print(f"orgs={orgs} rate={rate:g}/s/org seconds={seconds:g}")
    print(f"records created {created}, written {written} "
          f"({created / elapsed:.0f} events/s total)")
    if latencies:
        print(f"create->written latency ms: p50 {percentile(latencies, 0.5):.0f}  "
              f"p99 {percentile(latencies, 0.99):.0f}  max {max(latencies):.0f}")
    def ms(value: float | None) -> str:
        return "?" if value is None else f"{value * 1000:.0f}"

    print(f"of which inbox->written (the daemon's share, histogram bucket bounds): "
          f"p50 <= {ms(own_p50)} ms, p99 <= {ms(own_p99)} ms; a Collections call answered in"
          f" p50 <= {ms(call_p50)} ms, p99 <= {ms(call_p99)} ms")
    print(f"and change->inbox (the event's age when stored): p50 <= {ms(age_p50)} ms,"
          f" p99 <= {ms(age_p99)} ms")
    # devorg's side of change->inbox: each reply's oldest event, while the traffic ran.
    waits, answers = ([quantiles([*delivery["bounds"], math.inf], list(itertools.accumulate(
        a - b for a, b in zip(delivery[key], delivery_before[key], strict=True))))
        for key in ("connect_wait", "answer")]
        if delivery.get("bounds") else [(None, None), (None, None)])
    print(f"  of which waiting in devorg for the daemon's next connect: p50 <= {ms(waits[0])}"
          f" ms, p99 <= {ms(waits[1])} ms; devorg's answer once both were there: p50 <="
          f" {ms(answers[0])} ms, p99 <= {ms(answers[1])} ms")
    # Mostly creates devorg refuses as Salesforce would: the traffic's 300-character junk
    # Website is longer than the field (STRING_TOO_LONG); nothing for the daemon to do.
    print(f"creates refused by devorg {sum(t.stats.errors for t in traffic)} (junk values"
          f" longer than the field, as Salesforce refuses them); daemon log {root}")
    print(f"API calls {calls} = {calls / max(created, 1):.3f} per event")
    limit = api_limit or 15_000
    per_day = calls / max(orgs, 1) / elapsed * 86_400
    print(f"allowance {limit:,}/org/day: these calls at this pace come to {per_day:,.0f} a day"
          f" per org = {per_day / limit:.0%} of it (api_share 20%, the drain included)")
    if windows:
        widest = max(w for w, _ in windows)
        shares = [p for _, p in windows if p is not None]
        print(f"writer window at the end: widest {widest:.1f} s, "
              f"{sum(w > 0.1 for w, _ in windows)} of {len(windows)} orgs widened; projected"
              f" daily use {max(shares, default=0):.0%} at most (ilyd ctl orgs)")
    others = (f"devorg + traffic (this process) {100 * own / elapsed:.0f} %" if dev_cpu is None
              else f"devorg {100 * dev_cpu / elapsed:.0f} %, traffic {100 * own / elapsed:.0f} %")
    print(f"daemon CPU {cpu:.1f} s over {elapsed:.0f} s of traffic"
          f" ({100 * cpu / elapsed:.0f} % of one core, {1000 * cpu / max(created, 1):.2f} ms"
          f" per event), RSS {rss:.0f} MiB, threads {peak_threads} at most; {others};"
          f" load average"
          f" {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if generator is not None and generator.behind:
        print(f"traffic ticks late {generator.behind} (creates sent in bursts to keep the rate)")
    print(f"daemon {'ran throughout' if alive else 'DIED during the run'}; SIGTERM -> exit "
          f"{code} in {stop_took:.1f} s")
    problems = log_problems(log_path)
    if problems:
        print("daemon log errors:\n  " + "\n  ".join(problems))
    return 0 if written == created and alive and code == 0 else 1


def org_windows(socket_path: Path) -> list[tuple[float, float | None]]:
    """Each org's (window seconds, projected daily use) as `ilyd ctl orgs` shows them."""
    shown = []
    for org in ControlClient(socket_path, timeout=30).call("orgs"):
        detail = org.get("detail") or {}
        if "window" in detail:
            projected = detail.get("projected_api_use")
            shown.append((float(str(detail["window"]).rstrip("s")),
                          float(str(projected).rstrip("%")) / 100 if projected else None))
    return shown


if __name__ == "__main__":
    sys.exit(main())
