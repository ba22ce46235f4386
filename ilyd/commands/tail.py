"""`ilyd tail ORG --config PATH [--channel C]… [--replay -1|-2|N] [--count N]`.

Prints an org's streaming events as JSON lines — the tool to reach for when "events
don't arrive". It keeps its own in-memory replay cursor: the daemon's state store is
neither read nor written. Connection changes (re-handshakes, backoffs and why) go to
stderr, so stdout stays pure JSON lines.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Sequence

from ilyd.commands.config import add_config_argument
from ilyd.commands.orgload import EXIT_TLS, EXIT_USAGE, load_org, quiet_logging


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `tail`."""
    parser = subparsers.add_parser(
        "tail", help="print an org's streaming events as JSON lines")
    parser.add_argument("org", help="org name from the config")
    add_config_argument(parser)
    parser.add_argument(
        "--channel", action="append", metavar="C",
        help="channel to follow, e.g. /topic/IlyLeadChanges or /data/LeadChangeEvent "
             "(repeatable; default: the org's change event channels with source = \"cdc\","
             " else ilyd's PushTopics for the org's objects)")
    parser.add_argument(
        "--replay", type=int, default=-1, metavar="ID",
        help="-1 new events only (default), -2 every retained event, N events after N")
    parser.add_argument("--count", type=int, default=None, metavar="N",
                        help="exit after N events")
    parser.set_defaults(func=tail_command)


def tail_command(args: argparse.Namespace) -> int:
    """Follow the channels until Ctrl-C (or --count events)."""
    from ilyd.actors.context import OrgSecrets
    from ilyd.errors import IlydError, TlsError
    from ilyd.pipeline.cdc import CDC_CHANNELS
    from ilyd.provision.spec import PUSH_TOPICS
    from ilyd.salesforce.bayeux import BayeuxClient, BayeuxEvent, StreamStatus
    from ilyd.salesforce.connect import make_org_token_provider

    quiet_logging()
    loaded = load_org(args.config, args.org, "tail")
    if loaded is None:
        return EXIT_USAGE
    _config, org = loaded
    if args.replay < -2:
        print("ilyd tail: --replay must be -1, -2 or a replay id", file=sys.stderr)
        return EXIT_USAGE
    # source = "cdc": the change event channels ilyd selects; otherwise its PushTopics.
    channels = args.channel or [
        (CDC_CHANNELS[o] if org.source == "cdc" else PUSH_TOPICS[o].channel)
        for o in org.objects if o in PUSH_TOPICS]
    try:
        tokens = make_org_token_provider(org, OrgSecrets.read(org))
        instance = tokens.token().instance_url.rstrip("/")
    except (IlydError, ValueError) as exc:
        print(f"ilyd tail: {exc}", file=sys.stderr)
        return EXIT_TLS if isinstance(exc, TlsError) else 1

    done = threading.Event()
    printed = 0
    lock = threading.Lock()

    def on_events(events: Sequence[BayeuxEvent]) -> None:
        nonlocal printed
        with lock:
            for event in events:
                if done.is_set():
                    return
                line = {"channel": event.channel, "replayId": event.replay_id,
                        "data": event.data}
                sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")
                printed += 1
                if args.count is not None and printed >= args.count:
                    done.set()
            sys.stdout.flush()

    def on_status(status: StreamStatus) -> None:
        note = {"state": status.state.value, "reason": status.reason or None,
                "detail": status.detail or None, "retry_in": status.retry_in}
        print(json.dumps({k: v for k, v in note.items() if v is not None}), file=sys.stderr,
              flush=True)

    client = BayeuxClient(
        f"{instance}/cometd/{org.api_version}", channels=channels, on_events=on_events,
        access_token=lambda: tokens.token().access_token,
        refresh_token=lambda: tokens.refresh(stale=tokens.token()).access_token,
        default_replay=args.replay, on_status=on_status, org=str(org.name),
        ca_file=str(org.ca_file) if org.ca_file else None,
    )
    client.start()
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        client.stop(timeout=5)
    return 0
