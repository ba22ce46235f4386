"""A company-data vendor API on loopback, for tests of lookups that wait on the network."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class CompanyVendor:
    """Answers `GET …/{domain}` with `{"name": "{domain} Inc."}`.

    `hold(domain)` runs on the request's own thread before the answer is written (a test
    makes the vendor slow there, or counts what is in flight); `answered(domain)` after it.
    `base` is the server's URL; `stop()` shuts it down."""

    def __init__(self, hold: Callable[[str], None],
                 answered: Callable[[str], None] | None = None) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def do_GET(self) -> None:
                domain = self.path.rsplit("/", 1)[-1]
                hold(domain)
                body = json.dumps({"name": f"{domain} Inc."}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                if answered is not None:
                    answered(domain)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()

    def provider_toml(self, name: str, **settings: int) -> str:
        """An `[[org.enrich.provider]]` table looking companies up here (`settings`: more
        of the provider's integer keys, such as timeout or max_attempts)."""
        lines = [f"{key} = {value}" for key, value in settings.items()]
        return "\n".join(["", "[[org.enrich.provider]]", 'type = "http"', f'name = "{name}"',
                          f'url = "{self.base}/companies/{{domain}}"',
                          'fields = { Ily_Company_Name__c = "name" }', *lines, ""])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
