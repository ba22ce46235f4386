"""`ilyd connect ORG --config PATH [--sandbox]`: log in as the integration user (OAuth
web-server flow with PKCE on a loopback redirect) and store the refresh token 0600 where
the config expects it.

Exit codes: 0 connected, 1 other failure, 2 usage or config error, 3 access denied,
4 client id or secret refused, 5 nobody came back in time, 6 Salesforce's certificate
not trusted (set ca_file).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ilyd.commands.config import add_config_argument
from ilyd.commands.orgload import EXIT_TLS

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DENIED, EXIT_CLIENT, EXIT_TIMEOUT = 0, 1, 2, 3, 4, 5


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `connect`."""
    parser = subparsers.add_parser(
        "connect", help="authorise ilyd as the org's integration user (OAuth, in a browser)")
    parser.add_argument("org", help="org name from the config")
    add_config_argument(parser)
    parser.add_argument("--sandbox", action="store_true",
                        help="log in at test.salesforce.com (for environment = production)")
    parser.add_argument("--port", type=int, default=1717,
                        help="loopback port of the redirect URI (default 1717; the connected"
                        " app's callback is http://127.0.0.1:PORT/OauthRedirect)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds to wait for the login (default 300)")
    parser.add_argument("--no-browser", action="store_true", help="only print the URL")
    parser.set_defaults(func=connect_command)


def _open_browser(url: str) -> None:
    import contextlib
    import webbrowser

    # get() raises when no browser is known (a server): then the printed URL is all.
    with contextlib.suppress(webbrowser.Error, OSError):
        webbrowser.get().open(url)


def connect_command(args: argparse.Namespace) -> int:
    """Run the flow; print who is connected."""
    from ilyd.commands.orgload import load_org, quiet_logging
    from ilyd.config.model import SANDBOX_LOGIN_URL
    from ilyd.errors import IlydError
    from ilyd.provision.webflow import WebServerFlow

    quiet_logging()
    loaded = load_org(args.config, args.org, "connect")
    if loaded is None:
        return EXIT_USAGE
    config, org = loaded
    path = org.refresh_token.path() if org.refresh_token is not None else None
    if org.auth != "refresh_token" or path is None:
        print(f"ilyd connect: org {org.name!r} uses auth = {org.auth!r}; ilyd connect stores a"
              " refresh token, for auth = \"refresh_token\" (with refresh_token_file or the"
              " default location)", file=sys.stderr)
        return EXIT_USAGE
    login_url = (SANDBOX_LOGIN_URL if args.sandbox and org.environment == "production"
                 else org.login_url)
    try:
        secret = org.client_secret.read() if org.client_secret is not None else None
        flow = WebServerFlow(login_url, org.client_id, secret, port=args.port,
                             ca_file=org.ca_file)
    except IlydError as exc:
        print(f"ilyd connect: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        flow.probe_client()
        print(f"Open this URL and log in as the integration user of {org.name}:\n\n"
              f"  {flow.authorize_url}\n\nwaiting for the redirect to {flow.redirect_uri} …",
              flush=True)
        if not args.no_browser:
            _open_browser(flow.authorize_url)
        grant = flow.exchange(flow.wait(args.timeout))
        _store(path, grant.refresh_token)
    except IlydError as exc:
        flow.failed(exc)
        print(f"ilyd connect: {exc}", file=sys.stderr)
        return _exit_code(exc)
    else:
        flow.succeeded(f"The integration user of {org.name} is authorised; its refresh token"
                       f" is stored in {path}.")
    finally:
        flow.close()
    _acknowledge(config.daemon.state_dir, org.name, grant.org_id)
    who = flow.whoami(grant, org.api_version)
    kind = {True: "Sandbox", False: "Production"}.get(who.get("is_sandbox"), "unknown kind")
    print(f"connected {org.name}: user {who.get('username') or grant.user_id}"
          f" ({who.get('display_name') or '?'}), org {who.get('org_name') or '?'}"
          f" {grant.org_id} ({kind})\nrefresh token stored in {path} (mode 0600)")
    if args.sandbox and who.get("is_sandbox") is False:
        print("note: --sandbox was given but this org is a Production org", file=sys.stderr)
    return EXIT_OK


def _exit_code(exc: Exception) -> int:
    from ilyd.errors import TlsError
    from ilyd.provision.webflow import AccessDeniedError, ClientRejectedError, FlowTimeoutError

    for kind, code in ((AccessDeniedError, EXIT_DENIED), (ClientRejectedError, EXIT_CLIENT),
                       (FlowTimeoutError, EXIT_TIMEOUT), (TlsError, EXIT_TLS)):
        if isinstance(exc, kind):
            return code
    return EXIT_FAILED


def _store(path: Path, refresh_token: str) -> None:
    from ilyd.salesforce.token_file import RefreshTokenFile

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token_file = RefreshTokenFile(path)
    # Under the lock a running daemon refreshes with: it picks the new token up at its
    # next refresh instead of overwriting it with a rotation of the old one.
    with token_file.locked():
        token_file.write(refresh_token)


def _acknowledge(state_dir: Path, org: str, org_id: str) -> None:
    """Record the org id the token belongs to: a refreshed sandbox is handled now."""
    from ilyd.errors import IlydError
    from ilyd.provision.identity import OrgIdentityStore
    from ilyd.store import Database
    from ilyd.store.layout import org_database

    try:
        database = Database(org_database(state_dir, org))
    except IlydError:
        return  # the daemon records it at its next start
    try:
        OrgIdentityStore(database).acknowledge(org, org_id)
    finally:
        database.close()
