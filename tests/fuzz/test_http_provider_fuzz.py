"""The HTTP provider against hostile vendor answers from a real loopback HTTP server:
HTML, huge bodies, JSON of the wrong shape or types, a body trickled byte by byte. Each
gives a Lookup or a ProviderError with a reason; nothing else escapes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ilyd.enrich.http_provider import FAILURE_REASONS, MAX_BODY_BYTES, HttpProvider, HttpSettings
from ilyd.enrich.provider import Lookup
from ilyd.errors import ProviderError
from tests.fuzz.settings import NETWORK

FIELDS = {"Ily_Company_Name__c": "name", "Ily_Industry__c": "category.industry",
          "Ily_Employee_Count__c": "metrics.employees", "Ily_Technologies__c": "tech[*].name",
          "Ily_Country__c": "geo[0]"}


@dataclass(frozen=True)
class Answer:
    """What the vendor sends: status, content type, body; `trickle` sends the body one
    byte per that many seconds (a vendor that never quite stops)."""

    status: int
    content_type: str
    body: bytes
    trickle: float | None = None


class Vendor:
    """A loopback vendor API answering every request with the current `answer`."""

    def __init__(self) -> None:
        self.answer = Answer(404, "application/json", b"{}")
        self.stopping = threading.Event()
        vendor = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: object) -> None:
                pass

            def do_GET(self) -> None:
                answer = vendor.answer
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                try:
                    if answer.trickle is None:
                        self.wfile.write(answer.body)
                        return
                    for byte in answer.body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        if vendor.stopping.wait(answer.trickle):
                            return
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client gave up, as it should

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def provider(self) -> HttpProvider:
        return HttpProvider(HttpSettings(
            name="fuzzvendor", url=self.base + "/v1/{domain}", fields=FIELDS,
            timeout_seconds=0.5, requests_per_second=1000.0, max_attempts=2,
            backoff_initial_seconds=0.01, backoff_max_seconds=0.02,
        ))

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def vendor() -> Iterator[Vendor]:
    server = Vendor()
    yield server
    server.stop()


def ask(vendor: Vendor, answer: Answer) -> Lookup | ProviderError:
    vendor.answer = answer
    provider = vendor.provider()
    try:
        result: Lookup | ProviderError = provider.lookup("acme.example")
    except ProviderError as exc:
        result = exc
    finally:
        provider.close()
    if isinstance(result, ProviderError):
        assert result.reason in FAILURE_REASONS, result.reason
        assert str(result)
    return result


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["name", "category", "industry", "metrics", "employees", "tech",
                         "geo", "status", "x"]), inner, max_size=5),
    max_leaves=20,
)
bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.just(b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"),
    st.text(max_size=100).map(lambda t: f"<html><p>{t}</p></html>".encode()),
    st.binary(max_size=200),
)


@given(st.sampled_from([200, 200, 200, 201, 204, 400, 404, 410, 418, 500, 503]),
       st.sampled_from(["application/json", "text/html; charset=utf-8", "text/plain",
                        "application/octet-stream"]),
       bodies)
# Each held up the provider with an exception that is no ProviderError.
@example(200, "application/json", b"[" * 100_000)  # nested past the JSON parser's recursion
@example(200, "application/json", b'{"name": "' + b"\xff\xfe" * 4 + b'"}')
@NETWORK
def test_any_vendor_answer_gives_a_lookup_or_a_provider_error_with_a_reason(
        vendor, status, content_type, body):
    result = ask(vendor, Answer(status, content_type, body))
    if isinstance(result, Lookup):
        assert result.domain == "acme.example"
        assert set(result.values) <= set(FIELDS)
        for value in result.values.values():
            assert isinstance(value, str | int | float)


@given(st.sampled_from([MAX_BODY_BYTES + 1, 3 * MAX_BODY_BYTES]))
@NETWORK
def test_a_huge_answer_is_refused_with_a_reason_not_held_in_memory(vendor, size):
    body = b'{"name": "' + b"a" * size + b'"}'
    result = ask(vendor, Answer(200, "application/json", body))
    assert isinstance(result, ProviderError)
    assert result.reason == "bad_response"
    assert "larger than" in str(result)


@given(st.sampled_from([0.05, 0.2]))
@NETWORK
def test_a_vendor_trickling_its_answer_times_out_with_a_reason(vendor, interval):
    # Each byte comes well within the per-read timeout, the whole answer never does.
    body = json.dumps({"name": "Acme " + "x" * 2000}).encode()
    result = ask(vendor, Answer(200, "application/json", body, trickle=interval))
    assert isinstance(result, ProviderError)
    assert result.reason == "timeout"
    assert result.retryable
