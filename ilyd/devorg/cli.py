"""`ilyd devorg`: run the local Salesforce org emulator in the foreground."""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

# The first org matches config/ilyd.toml's example [[org]], so that file works as is.
EXAMPLE_ORG = {"name": "devorg", "client_id": "ilyd-devorg-client",
               "username": "integration@devorg.example"}


def register(subparsers: Any) -> None:
    """Add the `devorg` sub-command."""
    p = subparsers.add_parser("devorg", help="run the local Salesforce org emulator",
                              description="Run devorg, a local emulated Salesforce org "
                              "(OAuth, REST, Tooling, Bulk API 2.0, Streaming).")
    p.add_argument("--listen", default="127.0.0.1:8585", metavar="HOST:PORT",
                   help="address to serve on (default 127.0.0.1:8585; port 0 picks one)")
    p.add_argument("--my-domain-port", type=int, default=None, metavar="PORT",
                   help="port of the orgs' My Domain (instance) host, where the API and the"
                   " client credentials grant are served (default: the --listen port + 1,"
                   " or a free one with port 0)")
    p.add_argument("--tls", action="store_true",
                   help="serve HTTPS with a generated CA (its path is printed); with --data"
                   " the CA is kept in devorg-tls/ beside the data file and used again")
    p.add_argument("--orgs", type=int, default=1, help="production orgs (default 1)")
    p.add_argument("--sandboxes", type=int, default=0, help="sandbox orgs (default 0)")
    p.add_argument("--seed-records", type=int, default=0, metavar="N",
                   help="sample Accounts and Leads per org (N of each)")
    p.add_argument("--data", type=Path, metavar="FILE",
                   help="keep state in this SQLite file: orgs, records, tokens, and each "
                   "streaming channel's retained events and replay ids, which continue "
                   "across restarts (default: in memory; a restart is a new org)")
    p.add_argument("--token-ttl", type=float, default=7200.0, metavar="SECONDS",
                   help="access token lifetime (default 7200)")
    p.add_argument("--credentials-out", type=Path, metavar="FILE",
                   help="write every org's credentials as JSON (mode 0600)")
    p.add_argument("--config-out", type=Path, metavar="FILE",
                   help="write an ilyd TOML config for these orgs (secrets in files beside it)")
    p.set_defaults(func=run)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def write_config(path: Path, dev: Any) -> None:
    """An ilyd config for every org, refresh-token auth, secrets in files beside it."""
    secrets_dir = path.parent / f"{path.stem}-secrets"
    lines = ["# Written by `ilyd devorg --config-out`: these orgs, as served at " + dev.url,
             "# Secrets are in files beside this one (mode 0600); daemon sections keep their"
             " defaults.", ""]
    for org in dev.orgs:
        secret_file = secrets_dir / f"{org.name}.client_secret"
        refresh_file = secrets_dir / f"{org.name}.refresh_token"
        _write_private(secret_file, org.client_secret + "\n")
        _write_private(refresh_file, org.refresh_token + "\n")
        lines += ["[[org]]", f"name = {_toml_str(org.name)}",
                  f"environment = {_toml_str(org.login_url)}", 'auth = "refresh_token"',
                  f"client_id = {_toml_str(org.client_id)}",
                  f"client_secret_file = {_toml_str(str(secret_file.resolve()))}",
                  f"refresh_token_file = {_toml_str(str(refresh_file.resolve()))}",
                  f"username = {_toml_str(org.username)}"]
        if dev.ca_file:
            lines.append(f"ca_file = {_toml_str(str(Path(dev.ca_file).resolve()))}")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def _tune_collector() -> None:
    """Fewer cyclic-GC passes in the devorg process (its own process only: an in-process
    DevOrg leaves its host's collector alone). Every write keeps container objects (records,
    history, events) that each young collection walks again until they reach the old
    generation; at the default 700 allocations a pass, a real-time load spends a visible
    share of devorg's CPU in the collector. What exists at start is frozen out of it."""
    gc.freeze()
    gc.set_threshold(_GC_YOUNG, 20, 20)


_GC_YOUNG = 20_000


def run(args: argparse.Namespace) -> int:
    """Start devorg, print the credentials, serve until SIGINT/SIGTERM."""
    from ilyd.devorg import DevOrg

    host, _, port = args.listen.rpartition(":")
    my_domain_port = args.my_domain_port
    if my_domain_port is None:
        my_domain_port = int(port) + 1 if int(port or 0) else 0
    tls_dir = args.data.parent / "devorg-tls" if args.data and args.tls else None
    dev = DevOrg(host=host.strip("[]") or "127.0.0.1", port=int(port or 0), orgs=args.orgs,
                 sandbox_orgs=args.sandboxes, tls=args.tls, data=args.data,
                 seed_records=args.seed_records, token_ttl=args.token_ttl, tls_dir=tls_dir,
                 first_identity=EXAMPLE_ORG, my_domain_port=my_domain_port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with dev:
        _tune_collector()
        info = {"url": dev.url, "my_domain_url": dev.my_domain_url, "admin": dev.admin,
                "ca_file": str(dev.ca_file) if dev.ca_file else None,
                "orgs": [org.__dict__ for org in dev.orgs]}
        if args.credentials_out:
            _write_private(args.credentials_out, json.dumps(info, indent=2) + "\n")
        if args.config_out:
            write_config(args.config_out, dev)
        print(f"devorg serving {dev.url} (login host; admin API {dev.admin})\n"
              f"  My Domain (instance) host of every org: {dev.my_domain_url}", flush=True)
        if dev.ca_file:
            print(f"  CA certificate: {dev.ca_file}")
        for org in dev.orgs:
            kind = "sandbox" if org.is_sandbox else "production"
            print(f"  {org.name} ({kind}) org id {org.org_id}\n"
                  f"    login URL {org.login_url}  instance URL {org.instance_url}\n"
                  f"    username {org.username}  password {org.password}\n"
                  f"    client id {org.client_id}\n    client secret {org.client_secret}\n"
                  f"    refresh token {org.refresh_token}")
        print("  (for config/ilyd.toml: export ILYD_DEVORG_CLIENT_SECRET and "
              "ILYD_DEVORG_PASSWORD with the devorg org's values)", flush=True)
        # A timed wait, so the main thread runs Python again every second and the
        # signal handlers above always get to run.
        while not stop.wait(1.0):
            pass
    return 0
