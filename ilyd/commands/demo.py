"""`ilyd demo`: run the daemon on the example config and show `ilyd ctl status` / `orgs`.

Interim demo until the emulator lands (a later issue replaces this module with the live
demo: devorg + daemon + sample data). Orgs pointing at a devorg that is not running show
their real state (backoff, then fatal). Stops cleanly on Ctrl-C or after --duration.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# The example config references these; the emulator's own credentials come with it.
_DEMO_ENV = {"ILYD_DEVORG_CLIENT_SECRET": "devorg-client-secret",
             "ILYD_DEVORG_PASSWORD": "devorg-password"}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `demo`."""
    parser = subparsers.add_parser("demo", help="run the daemon on the example config")
    parser.add_argument("--config", default="config/ilyd.toml", metavar="PATH")
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                        help="stop on its own after this long (default: until Ctrl-C)")
    parser.set_defaults(func=demo_command)


def _ctl(config: str, *verb: str) -> int:
    return subprocess.call([sys.executable, "-m", "ilyd", "ctl", "--config", config, *verb])


def demo_command(args: argparse.Namespace) -> int:
    """Start the daemon, show its status, stop it on Ctrl-C / after --duration."""
    from ilyd.config import load_config
    from ilyd.ctl import ControlClient, DaemonNotRunningError
    from ilyd.errors import IlydError

    env = {**_DEMO_ENV, **os.environ}
    os.environ.update(env)
    try:
        socket_path = load_config(args.config).daemon.control_socket
    except IlydError as exc:
        print(f"ilyd demo: {exc}", file=sys.stderr)
        return 1
    daemon = subprocess.Popen([sys.executable, "-m", "ilyd", "run", "--config", args.config],
                              env=env)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                ControlClient(Path(socket_path), timeout=5).call("status")
                break
            except (DaemonNotRunningError, OSError):
                if daemon.poll() is not None or time.monotonic() > deadline:
                    print("ilyd demo: the daemon did not start", file=sys.stderr)
                    return 1
                time.sleep(0.1)
        end = time.monotonic() + args.duration if args.duration is not None else None
        while end is None or time.monotonic() < end:
            print()
            _ctl(args.config, "status")
            _ctl(args.config, "orgs")
            print("(Ctrl-C stops the demo)" if end is None else "")
            time.sleep(min(5.0, max(0.0, end - time.monotonic())) if end else 5.0)
    except KeyboardInterrupt:
        pass
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=15)
            except subprocess.TimeoutExpired:
                daemon.kill()
    return 0 if daemon.returncode in (0, -signal.SIGINT) else 1
