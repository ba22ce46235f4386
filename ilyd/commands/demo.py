"""`ilyd demo`: devorg + a provisioned org + the daemon + the sample dataset + traffic.

Starts the emulator with one org, installs ilyd into it (Ily fields, permission set,
PushTopics), runs `ilyd run` as a child process on a throw-away config and state
directory, and creates and edits Leads and Accounts as a user would (known companies,
free mail, junk websites, unknown companies). A live view shows what ilyd did; Ctrl-C
stops everything. `--duration N --json` runs unattended and prints a JSON summary.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_SETTLE_SECONDS = 20.0  # after traffic stops, how long --json waits for the last writes
DEMO_API_LIMIT = 5_000_000  # the demo org's daily API allowance: room for its compressed traffic


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `demo`."""
    parser = subparsers.add_parser(
        "demo", help="devorg + daemon + sample data, enrichment visible live")
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                        help="stop on its own after this long (default: until Ctrl-C)")
    parser.add_argument("--json", action="store_true",
                        help="no live view; print a JSON summary at the end")
    parser.add_argument("--rate", type=float, default=2.0, metavar="PER_SECOND",
                        help="records created or edited per second (default 2)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the demo's state directory and daemon log")
    parser.set_defaults(func=demo_command)


def ilyd_command() -> str:
    """How the admin's shell runs this ilyd: `ilyd` when that is the one on PATH, else the
    script next to this interpreter (`make demo` installs into .venv/bin, which is not on
    PATH until `. .venv/bin/activate`), else `python -m ilyd`."""
    script = Path(sys.executable).parent / "ilyd"
    found = shutil.which("ilyd")
    if script.exists():
        if found is not None and Path(found).resolve() == script.resolve():
            return "ilyd"
        return str(script)
    return f"{sys.executable} -m ilyd"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_config(root: Path, url: str, info: Any, metrics_port: int) -> Path:
    (root / "client_secret").write_text(info.client_secret)
    (root / "password").write_text(info.password)
    for name in ("client_secret", "password"):
        (root / name).chmod(0o600)
    config = root / "ilyd.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{root}/state"\ncontrol_socket = "{root}/control.sock"\n'
        f'log_format = "json"\n[metrics]\nlisten = "127.0.0.1:{metrics_port}"\n'
        f'[defaults]\npoll_interval = 5\n'
        f'[[org]]\nname = "demo"\nenvironment = "{url}"\nauth = "password"\n'
        f'client_id = "{info.client_id}"\nusername = "{info.username}"\n'
        f'client_secret_file = "{root}/client_secret"\npassword_file = "{root}/password"\n')
    return config


def _metric(port: int, name: str) -> float:
    import requests

    try:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except requests.RequestException:
        return 0.0
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            with contextlib.suppress(ValueError):
                total += float(line.rsplit(" ", 1)[1])
    return total


def _provision(config_path: Path) -> str:
    from ilyd.actors.context import OrgSecrets
    from ilyd.config import load_config
    from ilyd.provision.service import Provisioner
    from ilyd.salesforce.connect import make_org_rest_client

    org = load_config(config_path).orgs[0]
    rest = make_org_rest_client(org, OrgSecrets.read(org))
    try:
        report = Provisioner(org.name, rest, objects=org.objects,
                             api_version=org.api_version).provision()
    finally:
        rest.close()
    return str(report.mode)


def _wait_for_daemon(daemon: subprocess.Popen[bytes], socket_path: Path) -> bool:
    from ilyd.control.client import ControlClient, DaemonNotRunningError
    from ilyd.errors import ControlError

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            return False
        try:
            orgs = json.dumps(ControlClient(socket_path, timeout=5).call("orgs"))
        except (DaemonNotRunningError, OSError):
            orgs = ""
        except ControlError as exc:
            # The socket answers before the supervisor runs ("still starting"), and a
            # supervisor busy starting orgs may not answer in time: both say "busy".
            if exc.code != "busy":
                raise
            orgs = ""
        # Streaming only sees changes made after it subscribed: wait for that (or polling).
        if '"connected"' in orgs or '"polling"' in orgs:
            return True
        time.sleep(0.1)
    return False


def _summary(traffic: Any, observer: Any, *, calls: int, skipped: float, mode: str,
             metrics_port: int) -> dict[str, Any]:
    from ilyd.commands.demo_traffic import percentile

    lat = [v * 1000 for v in observer.latency.values()]
    statuses: dict[str, int] = {}
    for status in observer.status.values():
        statuses[status] = statuses.get(status, 0) + 1
    created = len(traffic.stats.created)
    return {
        "mode": mode,
        "created": created,
        "enriched": len(observer.latency),
        "match_status": statuses,
        "website_edits": len(traffic.stats.website_edits),
        "phone_edits": len(traffic.stats.phone_edits),
        "writes_skipped_unchanged": int(skipped),
        "api_calls": calls,
        "api_calls_per_record": round(calls / created, 3) if created else None,
        "latency_ms": {"p50": percentile(lat, 0.5), "p99": percentile(lat, 0.99),
                       "max": max(lat) if lat else None},
        "metrics_url": f"http://127.0.0.1:{metrics_port}/metrics",
    }


def _render(summary: dict[str, Any], config: Path, recent: list[str]) -> str:
    lat = summary["latency_ms"]

    def ms(value: float | None) -> str:
        return "—" if value is None else f"{value:.0f} ms"

    lines = [
        "\x1b[2J\x1b[H" + "ilyd demo — real-time Salesforce enrichment against devorg"
        f" (mode {summary['mode']})",
        "",
        f"  records created by users   {summary['created']:>6}"
        f"   (+ {summary['website_edits']} Website edits,"
        f" {summary['phone_edits']} Phone edits)",
        f"  enriched by ilyd           {summary['enriched']:>6}   "
        + ", ".join(f"{k or '?'}: {v}" for k, v in sorted(summary["match_status"].items())),
        f"  writes skipped (unchanged) {summary['writes_skipped_unchanged']:>6}",
        f"  API calls used             {summary['api_calls']:>6}"
        f"   ({summary['api_calls_per_record'] or 0} per record)",
        f"  create → written latency   p50 {ms(lat['p50'])}, p99 {ms(lat['p99'])},"
        f" max {ms(lat['max'])}",
        "",
        "  latest writes:",
        *[f"    {line}" for line in recent[-8:]],
        "",
        f"  metrics:  {summary['metrics_url']}",
        f"  control:  {ilyd_command()} ctl --config {config} status | orgs | check demo",
        "  Ctrl-C stops the demo.",
    ]
    return "\n".join(lines)


def demo_command(args: argparse.Namespace) -> int:
    """Run the demo until Ctrl-C or --duration; 0 on a clean stop."""
    import requests  # here: every `ilyd` command line imports this module

    from ilyd.commands.demo_traffic import Observer, Traffic
    from ilyd.daemon.logs import configure_logging
    from ilyd.devorg import DevOrg

    # The demo's own log lines (provisioning) only when something is wrong: the view
    # (or the JSON summary) is the output. The daemon logs to its own file.
    configure_logging("console", "error")

    root = Path(tempfile.mkdtemp(prefix="ilyd-demo-"))
    metrics_port = _free_port()
    dev = DevOrg(host="127.0.0.1", port=0, orgs=1).start()
    daemon: subprocess.Popen[bytes] | None = None
    traffic = None
    interrupted = False
    try:
        info = dev.orgs[0]
        # The traffic packs a day's creates into minutes: on devorg's default allowance
        # (a Developer Edition's 15,000 calls a day) the writer's window would widen to its
        # widest within seconds (api_share), hiding the live enrichment the demo shows.
        requests.patch(f"{dev.admin}/orgs/{info.name}/settings",
                       json={"api_limit": DEMO_API_LIMIT}, timeout=30).raise_for_status()
        config = _write_config(root, dev.url, info, metrics_port)
        if not args.json:
            print(f"devorg on {dev.url}; installing ilyd into org {info.name} …", flush=True)
        mode = _provision(config)
        log = (root / "daemon.log").open("wb")
        daemon = subprocess.Popen([sys.executable, "-m", "ilyd", "run", "--config", str(config)],
                                  stdout=log, stderr=subprocess.STDOUT,
                                  env={**os.environ, "PYTHONUNBUFFERED": "1"})
        if not _wait_for_daemon(daemon, root / "control.sock"):
            print(f"ilyd demo: the daemon did not start; see {root / 'daemon.log'}",
                  file=sys.stderr)
            return 1
        observer = Observer(dev.admin, info.name, info.user_id)
        # Calls from here on are the daemon's (and its start-up checks), not provisioning.
        baseline = observer.calls()
        traffic = Traffic(dev.admin, info.name, rate=args.rate).start()
        recent: list[str] = []

        def written(record: str, latency: float, status: str) -> None:
            recent.append(f"{record}  {status or '?':<15} {latency * 1000:6.0f} ms")

        end = time.monotonic() + args.duration if args.duration is not None else None
        try:
            while end is None or time.monotonic() < end:
                observer.check(list(traffic.stats.created), written)
                if not args.json:
                    summary = _summary(
                        traffic, observer, calls=observer.calls() - baseline,
                        skipped=_metric(metrics_port, "ilyd_writes_skipped_unchanged"),
                        mode=mode, metrics_port=metrics_port)
                    print(_render(summary, config, recent), flush=True)
                time.sleep(1.0)
        except KeyboardInterrupt:
            interrupted = True
        traffic.stop()
        if args.json and not interrupted:
            settle = time.monotonic() + _SETTLE_SECONDS
            while time.monotonic() < settle:
                observer.check(list(traffic.stats.created))
                if len(observer.latency) >= len(traffic.stats.created):
                    break
                time.sleep(0.5)
        summary = _summary(traffic, observer, calls=observer.calls() - baseline,
                           skipped=_metric(metrics_port, "ilyd_writes_skipped_unchanged"),
                           mode=mode, metrics_port=metrics_port)
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            print(f"\nstopped; {summary['enriched']}/{summary['created']} records enriched")
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if traffic is not None:
            traffic.stop()
        if daemon is not None and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                daemon.kill()
        dev.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
