"""Loopback servers for the provider tests: a vendor-like HTTP API and a DNS server.

Both bind 127.0.0.1 port 0 (test files run concurrently) and run in threads of the test
process. The DNS server (dnslib) answers like a recursive resolver for every name in
`COMPANY_ZONES`, which imitate real companies' setups using reserved `.test` names for
the companies and the vendors' published host names for the services.
bench/providers.py reuses these classes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from dnslib import QTYPE, RCODE, RR, DNSLabel, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

# --------------------------------------------------------------------------- HTTP stub


@dataclass(frozen=True)
class Reply:
    """One canned HTTP answer; `delay` seconds before answering (for timeouts)."""

    status: int = 200
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class SeenRequest:
    """What the stub received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: object


class HttpStub:
    """A vendor API on loopback: per path, a script of replies (the last one repeats)."""

    # Test modules cannot import conftest (importlib mode); they build replies through this.
    Reply = Reply

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.requests: list[SeenRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                seen = SeenRequest(
                    self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()),
                    json.loads(raw) if raw else None,
                )
                reply = stub._next_reply(seen)
                if reply.delay:
                    stub._stopping.wait(reply.delay)
                payload = b"" if reply.body is None else (
                    reply.body.encode() if isinstance(reply.body, str)
                    else json.dumps(reply.body).encode()
                )
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        # A short poll interval keeps shutdown (each test's teardown) quick.
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def route(self, path: str, *replies: Reply) -> None:
        """Answer `path` with these replies in turn, repeating the last."""
        with self._lock:
            self.routes[path] = list(replies)

    def _next_reply(self, seen: SeenRequest) -> Reply:
        with self._lock:
            self.requests.append(seen)
            script = self.routes.get(seen.path)
            if not script:
                return Reply(404, {"error": "unknown"})
            return script.pop(0) if len(script) > 1 else script[0]

    def hits(self, path: str) -> int:
        """How many requests reached `path`."""
        with self._lock:
            return sum(1 for r in self.requests if r.path == path)

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_stub() -> Iterator[HttpStub]:
    """A fresh vendor API stub on loopback."""
    stub = HttpStub()
    yield stub
    stub.stop()


# --------------------------------------------------------------------------- DNS server

# Reserved names for the companies (RFC 6761 .test); the vendors' real published host names
# for their services, because those are what the signature table matches.
COMPANY_ZONES = """
; Acme: Google Workspace (2023 single MX), Cloudflare DNS + CDN, SendGrid, Atlassian
acme.test.                 300 IN MX    1 smtp.google.com.
acme.test.                 300 IN TXT   "v=spf1 include:_spf.google.com include:sendgrid.net ~all"
acme.test.                 300 IN TXT   "google-site-verification=q1w2e3r4t5y6"
acme.test.                 300 IN TXT   "atlassian-domain-verification=Zx9Yw8Vu7"
acme.test.                 300 IN NS    ada.ns.cloudflare.com.
acme.test.                 300 IN NS    bob.ns.cloudflare.com.
acme.test.                 300 IN A     192.0.2.10
www.acme.test.             300 IN CNAME www.acme.test.cdn.cloudflare.net.
www.acme.test.cdn.cloudflare.net. 300 IN A 192.0.2.11

; Initech: Microsoft 365 behind Proofpoint, Azure DNS, Azure App Service
initech.test.              300 IN MX    10 mxa-00123.gslb.pphosted.com.
initech.test.              300 IN MX    10 mxb-00123.gslb.pphosted.com.
initech.test. 300 IN TXT "v=spf1 include:spf.protection.outlook.com include:spf-1.pphosted.com -all"
initech.test.              300 IN TXT   "MS=ms84736291"
initech.test.              300 IN NS    ns1-07.azure-dns.com.
initech.test.              300 IN NS    ns2-07.azure-dns.net.
www.initech.test.          300 IN CNAME initech-web.azurewebsites.net.
initech-web.azurewebsites.net. 300 IN CNAME waws-prod-am2-123.sip.azurewebsites.windows.net.
waws-prod-am2-123.sip.azurewebsites.windows.net. 300 IN A 198.51.100.20

; Globex: legacy Google MX set, Amazon SES for sending, Route 53, CloudFront, EC2
globex.test.               300 IN MX    1 aspmx.l.google.com.
globex.test.               300 IN MX    5 alt1.aspmx.l.google.com.
globex.test.               300 IN MX    10 aspmx2.googlemail.com.
globex.test.               300 IN TXT   "v=spf1 include:amazonses.com include:servers.mcsv.net ~all"
globex.test.               300 IN NS    ns-1234.awsdns-26.org.
globex.test.               300 IN NS    ns-567.awsdns-07.net.
globex.test.               300 IN A     203.0.113.7
7.113.0.203.in-addr.arpa.  300 IN PTR   ec2-203-0-113-7.compute-1.amazonaws.com.
www.globex.test.           300 IN CNAME d111111abcdef8.cloudfront.net.
d111111abcdef8.cloudfront.net. 300 IN A 203.0.113.8

; Hooli: Microsoft 365 on the DNSSEC/DANE MX host name
hooli.test.                300 IN MX    0 hooli-test.d-v1.mx.microsoft.
hooli.test.                300 IN TXT   "v=spf1 include:spf.protection.outlook.com -all"

; Lookalike: a host name that merely ends in the same letters must not match
notgoogle.test.            300 IN MX    10 mail.notgoogle.com.
notgoogle.test.            300 IN NS    ns1.notcloudflare.com.

; An SPF include chain longer than RFC 7208 allows, and a loop
chain.test.                300 IN TXT   "v=spf1 include:l1.chain.test ~all"
l1.chain.test.             300 IN TXT   "v=spf1 include:l2.chain.test include:sendgrid.net ~all"
l2.chain.test.             300 IN TXT   "v=spf1 include:l3.chain.test ~all"
l3.chain.test.             300 IN TXT   "v=spf1 include:l4.chain.test ~all"
l4.chain.test.             300 IN TXT   "v=spf1 include:l5.chain.test ~all"
l5.chain.test.             300 IN TXT   "v=spf1 include:l6.chain.test ~all"
l6.chain.test.             300 IN TXT   "v=spf1 include:l7.chain.test ~all"
l7.chain.test.             300 IN TXT   "v=spf1 include:l8.chain.test ~all"
l8.chain.test.             300 IN TXT   "v=spf1 include:l9.chain.test ~all"
l9.chain.test.             300 IN TXT   "v=spf1 include:l10.chain.test ~all"
l10.chain.test.            300 IN TXT   "v=spf1 include:l11.chain.test ~all"
l11.chain.test.            300 IN TXT   "v=spf1 include:mailgun.org ~all"
mailgun.org.               300 IN TXT   "v=spf1 ip4:198.51.100.0/24 ~all"
loop.test.                 300 IN TXT   "v=spf1 include:loop.test redirect=loop.test"

; the vendors' own SPF records the includes lead to
_spf.google.com.           300 IN TXT   "v=spf1 include:_netblocks.google.com ~all"
_netblocks.google.com.     300 IN TXT   "v=spf1 ip4:192.0.2.0/24 ~all"
sendgrid.net.              300 IN TXT   "v=spf1 ip4:198.51.100.0/24 ~all"
spf.protection.outlook.com. 300 IN TXT  "v=spf1 ip4:198.51.100.0/24 -all"
spf-1.pphosted.com.        300 IN TXT   "v=spf1 ip4:203.0.113.0/24 -all"
amazonses.com.             300 IN TXT   "v=spf1 ip4:203.0.113.0/24 -all"
servers.mcsv.net.          300 IN TXT   "v=spf1 ip4:203.0.113.0/24 -all"
"""


class ZoneResolver(BaseResolver):
    """Answers like a recursive resolver from a fixed set of records.

    Unknown names get NXDOMAIN; names in `servfail` get SERVFAIL; names in `slow` are
    answered only after `slow_seconds` (long after the client gave up).
    """

    def __init__(self, zone_text: str, stopping: threading.Event) -> None:
        self.records: dict[DNSLabel, list[RR]] = {}
        for rr in RR.fromZone(zone_text):
            self.records.setdefault(rr.rname, []).append(rr)
        # An empty non-terminal (a parent of a name with records) exists too.
        self._existing = {DNSLabel(owner.label[i:]) for owner in self.records
                          for i in range(len(owner.label))}
        self.servfail: set[DNSLabel] = set()
        self.slow: set[DNSLabel] = set()
        self.slow_seconds = 5.0
        self.queries = 0
        self._stopping = stopping
        self._lock = threading.Lock()

    def _exists(self, name: DNSLabel) -> bool:
        return name in self._existing

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        with self._lock:
            self.queries += 1
        reply = request.reply()
        name = request.q.qname
        qtype = request.q.qtype
        if name in self.slow:
            self._stopping.wait(self.slow_seconds)
        if name in self.servfail:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if not self._exists(name):
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for _ in range(8):  # follow CNAMEs inside our data, like a recursive resolver
            rrs = self.records.get(name, [])
            cname = [rr for rr in rrs if rr.rtype == QTYPE.CNAME]
            if cname and qtype != QTYPE.CNAME:
                reply.add_answer(*cname)
                name = cname[0].rdata.label
                continue
            for rr in rrs:
                if rr.rtype == qtype:
                    reply.add_answer(rr)
            break
        return reply


class ZoneServer:
    """A DNS server on 127.0.0.1 (UDP, port 0) serving `zone_text`."""

    def __init__(self, zone_text: str = COMPANY_ZONES) -> None:
        self._stopping = threading.Event()
        self.resolver = ZoneResolver(zone_text, self._stopping)
        quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data")
        self._server = DNSServer(self.resolver, address="127.0.0.1", port=0, logger=quiet)
        # Our own thread instead of start_thread(): a short poll interval makes stop() quick.
        threading.Thread(
            target=self._server.server.serve_forever, kwargs={"poll_interval": 0.02},
            daemon=True,
        ).start()
        self.port: int = self._server.server.server_address[1]

    def servfail(self, name: str) -> None:
        """Answer every query for `name` with SERVFAIL."""
        self.resolver.servfail.add(DNSLabel(name))

    def slow(self, name: str) -> None:
        """Answer queries for `name` only long after any client timeout."""
        self.resolver.slow.add(DNSLabel(name))

    def stop(self) -> None:
        """Stop answering and release the port."""
        self._stopping.set()
        self._server.stop()


@pytest.fixture
def dns_server() -> Iterator[ZoneServer]:
    """A loopback DNS server serving COMPANY_ZONES."""
    server = ZoneServer()
    yield server
    server.stop()

