"""Real-time enrichment benchmark: N orgs on one devorg, R records/s per org, T seconds.

Starts devorg with N orgs, installs ilyd into each, runs `ilyd run` as a child process,
creates records as a user in every org, then reads each record's history back from
devorg and prints create → written latency (p50 / p99 / max), API calls per event, and
the daemon's CPU time and RSS.

    .venv/bin/python bench/realtime.py --orgs 1 --rate 50 --seconds 30
    .venv/bin/python bench/realtime.py --orgs 100 --rate 5 --seconds 30
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ilyd.actors.org import OrgSecrets
from ilyd.commands.demo_traffic import Observer, Traffic, percentile
from ilyd.config import load_config
from ilyd.devorg import DevOrg
from ilyd.logs import configure_logging
from ilyd.provision.service import Provisioner
from ilyd.salesforce.connect import make_org_rest_client


def write_config(root: Path, dev: DevOrg) -> Path:
    text = (f'[daemon]\nstate_dir = "{root}/state"\ncontrol_socket = "{root}/control.sock"\n'
            'log_format = "json"\nlog_level = "info"\n[metrics]\nlisten = ""\n'
            '[defaults]\npoll_interval = 5\nworkers = 2\n')
    for info in dev.orgs:
        secret, password = root / f"{info.name}.secret", root / f"{info.name}.pw"
        secret.write_text(info.client_secret)
        password.write_text(info.password)
        secret.chmod(0o600)
        password.chmod(0o600)
        text += (f'[[org]]\nname = "{info.name}"\nenvironment = "{dev.url}"\n'
                 f'auth = "password"\nclient_id = "{info.client_id}"\n'
                 f'username = "{info.username}"\nclient_secret_file = "{secret}"\n'
                 f'password_file = "{password}"\n')
    path = root / "ilyd.toml"
    path.write_text(text)
    return path


def provision(config_path: Path) -> None:
    def one(org: object) -> None:
        rest = make_org_rest_client(org, OrgSecrets.read(org))  # type: ignore[arg-type]
        try:
            Provisioner(org.name, rest, objects=org.objects,  # type: ignore[attr-defined]
                        api_version=org.api_version).provision()  # type: ignore[attr-defined]
        finally:
            rest.close()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, load_config(config_path).orgs))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=1)
    parser.add_argument("--rate", type=float, default=50.0, help="records/s per org")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    configure_logging("console", "error")
    root = Path(tempfile.mkdtemp(prefix="ilyd-bench-"))
    with DevOrg(host="127.0.0.1", port=0, orgs=args.orgs) as dev:
        config = write_config(root, dev)
        started = time.monotonic()
        provision(config)
        print(f"provisioned {args.orgs} org(s) in {time.monotonic() - started:.1f} s")
        log = (root / "daemon.log").open("wb")
        daemon = subprocess.Popen([sys.executable, "-m", "ilyd", "run", "--config", str(config)],
                                  stdout=log, stderr=subprocess.STDOUT)
        observers = [Observer(dev.admin, i.name, i.user_id) for i in dev.orgs]
        time.sleep(3.0)  # orgs start, pollers decide
        calls_before = sum(o.calls() for o in observers)
        cpu_before = cpu_seconds(daemon.pid)
        traffic = [Traffic(dev.admin, i.name, rate=args.rate, edits=False).start()
                   for i in dev.orgs]
        time.sleep(args.seconds)
        for t in traffic:
            t.stop()
        created = sum(len(t.stats.created) for t in traffic)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for t, o in zip(traffic, observers, strict=True):
                o.check(list(t.stats.created))
            if sum(len(o.latency) for o in observers) >= created:
                break
            time.sleep(1.0)
        missing = [(o, r) for t, o in zip(traffic, observers, strict=True)
                   for r in t.stats.created if r not in o.latency]
        for observer, record in missing[:5]:
            values = observer._session.get(f"{observer.base}/records/{record}", timeout=30).json()
            shown = {k: values["record"].get(k) for k in ("Website", "Email", "Company")}
            print(f"not written: {record} {shown} history={len(values['history'])}")
        cpu = cpu_seconds(daemon.pid) - cpu_before
        rss = rss_mib(daemon.pid)
        calls = sum(o.calls() for o in observers) - calls_before
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    latencies = [v * 1000 for o in observers for v in o.latency.values()]
    written = len(latencies)
    elapsed = args.seconds
    print(f"orgs={args.orgs} rate={args.rate:g}/s/org seconds={args.seconds:g}")
    print(f"records created {created}, written {written} "
          f"({created / elapsed:.0f} events/s total)")
    if latencies:
        print(f"create->written latency ms: p50 {percentile(latencies, 0.5):.0f}  "
              f"p99 {percentile(latencies, 0.99):.0f}  max {max(latencies):.0f}")
    print(f"traffic errors {sum(t.stats.errors for t in traffic)}; daemon log {root}")
    print(f"API calls {calls} = {calls / max(created, 1):.3f} per event")
    print(f"daemon CPU {cpu:.1f} s over {elapsed + 0:.0f} s"
          f" ({100 * cpu / elapsed:.0f} % of one core), RSS {rss:.0f} MiB")
    return 0 if written == created else 1


if __name__ == "__main__":
    sys.exit(main())
