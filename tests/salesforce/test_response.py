"""ilyd's own response type: what every Salesforce call returns, whichever path carried
it (the kept connection or requests), and the one streamed exception (Bulk results)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

import ilyd
from ilyd.errors import SalesforceError
from ilyd.salesforce.direct import DirectSession
from ilyd.salesforce.response import Headers, HttpResponse
from ilyd.salesforce.rest import RestClient
from tests.helpers.serving import serving


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = '[{"message":"Zoë is not a date","errorCode":"INVALID_TYPE"}]'.encode()
        self.send_response(400, "Bad Request")
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Set-Cookie", "BrowserId=a; Path=/")
        self.send_header("set-cookie", "CookieConsentPolicy=0:1; Path=/")
        self.send_header("Sforce-Limit-Info", "api-usage=7/15000")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    with serving(server):
        yield f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def direct(monkeypatch: pytest.MonkeyPatch) -> Iterator[DirectSession]:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    session = DirectSession(requests.Session())
    yield session
    session.close()


def test_headers_are_found_in_any_case_and_a_repeated_one_reads_as_its_values_joined() -> None:
    headers = Headers([("Set-Cookie", "a=1"), ("Sforce-Limit-Info", "api-usage=1/15000"),
                       ("set-cookie", "b=2")])
    assert headers["SET-COOKIE"] == headers.get("set-cookie") == "a=1, b=2"
    assert "sforce-limit-info" in headers
    assert list(headers) == ["Set-Cookie", "Sforce-Limit-Info"]  # first spelling, in order
    assert headers.get("Retry-After") is None


def test_text_follows_the_content_types_charset_and_json_refuses_what_is_not_json() -> None:
    latin = HttpResponse(200, "OK", Headers([("Content-Type", "text/plain; charset=ISO-8859-1")]),
                         "Zoë".encode("latin-1"), "http://x/")
    plain = HttpResponse(500, "", Headers(), "Zoë <html>".encode(), "http://x/")
    assert latin.text == "Zoë"
    assert plain.text == "Zoë <html>"  # no charset named: UTF-8, as Salesforce sends
    with pytest.raises(ValueError, match="Expecting value"):  # what callers catch
        plain.json()


def test_the_kept_connection_and_the_requests_path_answer_with_the_same_response(
        base: str, direct: DirectSession) -> None:
    kept = direct.request("POST", f"{base}/x", json={"a": 1}, timeout=10)
    # A str body is not one the kept connection sends: requests carries it.
    through_requests = direct.request("POST", f"{base}/x", data="a=1", timeout=10)
    for response in (kept, through_requests):
        assert isinstance(response, HttpResponse)
        assert (response.status_code, response.reason, response.url) == (
            400, "Bad Request", f"{base}/x")
        assert response.headers["SET-COOKIE"] == (
            "BrowserId=a; Path=/, CookieConsentPolicy=0:1; Path=/")
        assert response.json() == [{"message": "Zoë is not a date",
                                    "errorCode": "INVALID_TYPE"}]
    assert ({k: v for k, v in kept.headers.items() if k != "Date"}
            == {k: v for k, v in through_requests.headers.items() if k != "Date"})


def test_a_bulk_result_read_streams_as_requests_own_response_and_a_failed_one_is_translated(
        rest: RestClient) -> None:
    response = rest.http.stream("limits", "GET", "limits")
    try:
        assert isinstance(response, requests.Response)
        assert b"DailyApiRequests" in b"".join(response.iter_content(64))
    finally:
        response.close()
    with pytest.raises(SalesforceError) as failed:
        rest.http.stream("bulk_query_results", "GET", "jobs/query/750000000000000AAA/results",
                         headers={"Accept": "text/csv"})
    assert (failed.value.status, failed.value.error_code) == (404, "NOT_FOUND")
    with pytest.raises(TypeError, match=r"use stream\(\)"):
        rest.http.request("limits", "GET", "limits", stream=True)


def test_ilyd_sets_no_private_field_of_requests() -> None:
    private = re.compile(r"\._content\b|_content_consumed")
    found = [f"{path}:{n}" for path in Path(ilyd.__file__).parent.rglob("*.py")
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if private.search(line)]
    assert found == []
