"""The DNS provider against a hostile DNS server on loopback (UDP and TCP): truncated
answers, oversized TXT records, CNAME loops, wrong records, garbage, odd rcodes. Each
lookup gives a Lookup whose values fit their fields, or a ProviderError with a reason."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from dnslib import CNAME, MX, NS, QTYPE, RCODE, RR, TXT, A, DNSRecord
from hypothesis import example, given
from hypothesis import strategies as st

from ilyd.enrich.dns_provider import FAILURE_REASONS, DnsProvider, DnsSettings
from ilyd.enrich.domain import DomainResult
from ilyd.enrich.values import outcome_from_lookup
from ilyd.errors import ProviderError
from tests.fuzz.fits import assert_fits
from tests.fuzz.settings import NETWORK

DOMAIN = "acme.test"

# How the server answers one query type: (mode, parameter).
modes = st.one_of(
    st.tuples(st.just("records"), st.just(None)),
    st.tuples(st.just("rcode"), st.sampled_from([RCODE.SERVFAIL, RCODE.REFUSED, RCODE.NOTIMP,
                                                RCODE.FORMERR, RCODE.NXDOMAIN, 6, 9, 15])),
    st.tuples(st.just("truncated"), st.booleans()),  # the TCP retry: answered or refused
    st.tuples(st.just("txt"), st.lists(st.binary(max_size=255), min_size=1, max_size=250)),
    st.tuples(st.just("cname_loop"), st.integers(min_value=1, max_value=40)),
    st.tuples(st.just("wrong_records"), st.sampled_from(["other_name", "other_type"])),
    st.tuples(st.just("garbage"), st.binary(max_size=300)),
)
plans = st.dictionaries(st.sampled_from(["MX", "TXT", "NS", "A", "AAAA", "PTR", "CNAME"]),
                        modes, max_size=6)


class HostileDns:
    """A DNS server on 127.0.0.1 answering by the current `plan` (qtype -> mode)."""

    def __init__(self) -> None:
        self.plan: dict[str, tuple[str, Any]] = {}
        hostile = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                reply = hostile.answer(data, tcp=False)
                if reply is not None:
                    sock.sendto(reply, self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(5)
                try:
                    size = int.from_bytes(self.request.recv(2), "big")
                    data = b""
                    while len(data) < size and (chunk := self.request.recv(size - len(data))):
                        data += chunk
                    reply = hostile.answer(data, tcp=True)
                    if reply is not None:
                        self.request.sendall(len(reply).to_bytes(2, "big") + reply)
                except OSError:
                    return

        # The OS picks a free UDP port; its TCP twin may be taken by another test running
        # at the same time, so try again on a new UDP port until both are ours.
        for _attempt in range(50):
            self.udp = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Udp)
            self.port = self.udp.server_address[1]
            try:
                self.tcp = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Tcp)
                break
            except OSError:
                self.udp.server_close()
        else:
            raise OSError("no loopback port free on both UDP and TCP after 50 tries")
        for server in (self.udp, self.tcp):
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                             daemon=True).start()

    def answer(self, data: bytes, *, tcp: bool) -> bytes | None:
        try:
            request = DNSRecord.parse(data)
        except Exception:  # not this test's subject: drop what cannot be read
            return None
        qname, qtype = request.q.qname, QTYPE[request.q.qtype]
        mode, param = self.plan.get(qtype, ("records", None))
        reply = request.reply()
        if mode == "rcode":
            reply.header.rcode = param
        elif mode == "truncated" and not tcp:
            reply.header.tc = 1
        elif mode == "truncated" and not param:
            return None  # the TCP retry gets nothing
        elif mode == "txt":
            for start in range(0, len(param), 8):
                reply.add_answer(RR(qname, QTYPE.TXT, rdata=TXT(param[start:start + 8])))
        elif mode == "cname_loop":
            names = [f"c{i}.{DOMAIN}" for i in range(param)]
            for here, there in zip([str(qname), *names], [*names, str(qname)], strict=True):
                reply.add_answer(RR(here, QTYPE.CNAME, rdata=CNAME(there)))
        elif mode == "wrong_records":
            name = "elsewhere.test" if param == "other_name" else qname
            reply.add_answer(RR(name, QTYPE.A, rdata=A("192.0.2.1")))
            reply.add_answer(RR(name, QTYPE.MX, rdata=MX("mx.google.com")))
        elif mode == "garbage":
            return data[:2] + param  # our id, then anything
        else:
            self._records(reply, qname, qtype)
        packed = reply.pack()
        if not tcp and len(packed) > 65000:
            return packed[:65000]
        return packed

    @staticmethod
    def _records(reply: DNSRecord, qname: Any, qtype: str) -> None:
        records = {"MX": MX("aspmx.l.google.com"), "NS": NS("ns1.cloudflare.com"),
                   "A": A("192.0.2.10"),
                   "TXT": TXT(b"v=spf1 include:_spf.google.com ~all")}
        if qtype in records:
            reply.add_answer(RR(qname, getattr(QTYPE, qtype), rdata=records[qtype]))

    def stop(self) -> None:
        for server in (self.udp, self.tcp):
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileDns]:
    server = HostileDns()
    yield server
    server.stop()


def lookup(hostile: HostileDns, plan: dict[str, tuple[str, Any]]) -> object:
    hostile.plan = plan
    provider = DnsProvider(DnsSettings(nameservers=("127.0.0.1",), port=hostile.port,
                                       query_timeout_seconds=0.5, budget_seconds=3.0))
    try:
        return provider.lookup(DOMAIN)
    except ProviderError as exc:
        return exc


@given(plans)
@example({"TXT": ("txt", [b"\xff" * 255] * 250)})  # TXT strings of ~62 KB, not UTF-8
@example({"A": ("cname_loop", 1), "CNAME": ("cname_loop", 40)})
@example({"MX": ("truncated", True), "TXT": ("truncated", False)})
@NETWORK
def test_any_dns_answer_gives_a_lookup_that_fits_or_a_provider_error(hostile, plan):
    result = lookup(hostile, plan)
    if isinstance(result, ProviderError):
        assert result.reason in FAILURE_REASONS
        assert str(result)
        return
    outcome = outcome_from_lookup("Lead", DomainResult(DOMAIN), result,
                                  datetime(2026, 1, 1, tzinfo=UTC))
    assert outcome.status is not None
    assert_fits("Lead", outcome.values)


@given(st.integers(min_value=1, max_value=40))
@NETWORK
def test_a_cname_loop_at_the_apex_is_named_not_called_a_server_failure(hostile, length):
    result = lookup(hostile, {"A": ("cname_loop", length)})
    assert isinstance(result, ProviderError)
    assert result.reason == "dns_error"
    assert "CNAME" in str(result)


def test_the_hostile_server_answers_on_udp_and_tcp(hostile):
    hostile.plan = {}
    query = DNSRecord.question(DOMAIN, "MX").pack()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(5)
        udp.sendto(query, ("127.0.0.1", hostile.port))
        assert DNSRecord.parse(udp.recv(65535)).rr
    with socket.create_connection(("127.0.0.1", hostile.port), timeout=5) as tcp:
        tcp.sendall(len(query).to_bytes(2, "big") + query)
        assert int.from_bytes(tcp.recv(2), "big") > 0
