"""CPU per HTTP/1.1 exchange on the daemon's two hot requests, three ways: ilyd's
hand-written exchange (`ilyd.salesforce.http11`), h11, and the standard library's
`http.client`.

The two exchanges are the sObject Collections write (a PATCH of 10 records, answered
with their results) and the Bayeux long poll (a /meta/connect POST answered with one
change event). A server in a child process answers every request with the same bytes,
once as devorg frames it (Content-Length) and once as Salesforce does (more headers,
chunked); only this process's CPU is counted, so the figure is the client's alone.

    .venv/bin/python bench/http_exchange.py [--exchanges 5000] [--rounds 3]

Prints µs of CPU (and of wall time) per exchange, the best of the rounds, for each
implementation, exchange and framing, and h11's cost relative to the hand-written one.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import socket
import time
from collections.abc import Callable

import h11

from ilyd.salesforce import http11

_COLLECTIONS_BODY = json.dumps({"allOrNone": False, "records": [
    {"attributes": {"type": "Account"}, "id": f"0010000000000{n:02d}AAA",
     "Ily_Industry__c": "Software", "Ily_Employees__c": 120, "Ily_Domain__c": f"a{n}.com"}
    for n in range(10)]}).encode()
_COLLECTIONS_REPLY = json.dumps([
    {"id": f"0010000000000{n:02d}AAA", "success": True, "errors": []}
    for n in range(10)]).encode()
_CONNECT_BODY = json.dumps([{"channel": "/meta/connect", "clientId": "3d1j0bq7b1ag6f9k0w",
                             "connectionType": "long-polling", "id": "42"}]).encode()
_CONNECT_REPLY = json.dumps([
    {"data": {"event": {"createdDate": "2026-12-07T16:32:19.000Z", "replayId": 1234,
                        "type": "created"},
              "sobject": {"Id": "00100000000000RAAQ", "Name": "Acme", "Website": "acme.com"}},
     "channel": "/topic/IlyAccount"},
    {"clientId": "3d1j0bq7b1ag6f9k0w", "channel": "/meta/connect", "id": "42",
     "successful": True, "advice": {"reconnect": "retry", "interval": 0, "timeout": 110000}},
]).encode()

_SALESFORCE_HEADERS = (
    b"Date: Mon, 07 Dec 2026 16:32:19 GMT\r\n"
    b"Strict-Transport-Security: max-age=63072000; includeSubDomains\r\n"
    b"X-Content-Type-Options: nosniff\r\n"
    b"X-XSS-Protection: 1; mode=block\r\n"
    b"X-Robots-Tag: none\r\n"
    b"Cache-Control: no-cache,must-revalidate,max-age=0,no-store,private\r\n"
    b"Set-Cookie: BrowserId=q2bN3zVfEe6kX; domain=.salesforce.com; path=/; "
    b"expires=Tue, 07-Dec-2027 16:32:19 GMT; Max-Age=31536000; secure; SameSite=None\r\n"
    b"Sforce-Limit-Info: api-usage=2/15000\r\n"
    b"Content-Type: application/json;charset=UTF-8\r\n"
    b"Vary: Accept-Encoding\r\n"
)


def _devorg_reply(body: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nServer: devorg \r\nDate: Mon, 07 Dec 2026 16:32:19 GMT\r\n"
            b"Content-Type: application/json;charset=UTF-8\r\n"
            b"Sforce-Limit-Info: api-usage=2/15000\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body))


def _salesforce_reply(body: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\n" + _SALESFORCE_HEADERS
            + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))


EXCHANGES = {  # name: (method, target, request body, {framing: reply bytes})
    "collections PATCH": ("PATCH", "/services/data/v62.0/composite/sobjects", _COLLECTIONS_BODY,
                          {"devorg": _devorg_reply(_COLLECTIONS_REPLY),
                           "salesforce": _salesforce_reply(_COLLECTIONS_REPLY)}),
    "bayeux connect POST": ("POST", "/cometd/62.0", _CONNECT_BODY,
                            {"devorg": _devorg_reply(_CONNECT_REPLY),
                             "salesforce": _salesforce_reply(_CONNECT_REPLY)}),
}
_HEADERS = {"Authorization": "Bearer 00D000000000001!AQ4AQFq8Bc1T", "Content-Type":
            "application/json", "Accept": "application/json", "Accept-Encoding": "gzip, deflate",
            "User-Agent": "ilyd/0.9", "Connection": "keep-alive"}


def _serve(listener: socket.socket, reply: bytes) -> None:
    """Answer every request on every connection with `reply` (a child process)."""
    while True:
        conn, _ = listener.accept()
        answer(conn, reply)


def answer(conn: socket.socket, reply: bytes) -> None:
    """Answer each request of one connection with `reply` until the client closes it."""
    buf = b""
    with conn:
        while True:
            while b"\r\n\r\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(buf) < length:
                buf += conn.recv(65536)
            buf = buf[length:]
            conn.sendall(reply)


def _hand_written(port: int) -> Callable[[str, str, bytes], bytes]:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    host = f"127.0.0.1:{port}"

    def exchange(method: str, target: str, body: bytes) -> bytes:
        http11.write_request(sock, method, target, host, headers=_HEADERS, body=body)
        return http11.read_response(sock, method).body

    return exchange


def _h11(port: int) -> Callable[[str, str, bytes], bytes]:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = h11.Connection(h11.CLIENT)
    host = f"127.0.0.1:{port}"

    def exchange(method: str, target: str, body: bytes) -> bytes:
        headers = [("Host", host), *_HEADERS.items(), ("Content-Length", str(len(body)))]
        sock.sendall(conn.send(h11.Request(method=method, target=target, headers=headers))
                     + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
        parts = []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(sock.recv(65536))
            elif isinstance(event, h11.Data):
                parts.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
        conn.start_next_cycle()
        return b"".join(parts)

    return exchange


def _http_client(port: int) -> Callable[[str, str, bytes], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port)

    def exchange(method: str, target: str, body: bytes) -> bytes:
        conn.request(method, target, body, _HEADERS)
        return conn.getresponse().read()

    return exchange


IMPLEMENTATIONS = {"hand-written http11": _hand_written, "h11": _h11,
                   "http.client": _http_client}


def _measure(make: Callable[[int], Callable[[str, str, bytes], bytes]], port: int,
             method: str, target: str, body: bytes, count: int) -> tuple[float, float]:
    exchange = make(port)
    for _ in range(200):  # warm up: connection, caches
        exchange(method, target, body)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        exchange(method, target, body)
    return ((time.process_time() - cpu) * 1e6 / count,
            (time.perf_counter() - wall) * 1e6 / count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exchanges", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{'exchange':<21} {'framing':<11} {'implementation':<20} "
          f"{'CPU µs/exch':>11} {'wall µs/exch':>12}")
    for name, (method, target, body, replies) in EXCHANGES.items():
        for framing, reply in replies.items():
            listener = socket.create_server(("127.0.0.1", 0))
            server = multiprocessing.Process(target=_serve, args=(listener, reply), daemon=True)
            server.start()
            port = listener.getsockname()[1]
            try:
                best: dict[str, tuple[float, float]] = {}
                for _ in range(args.rounds):  # interleaved: load from others hits all alike
                    for label, make in IMPLEMENTATIONS.items():
                        cpu, wall = _measure(make, port, method, target, body, args.exchanges)
                        old = best.get(label, (float("inf"), float("inf")))
                        best[label] = (min(old[0], cpu), min(old[1], wall))
            finally:
                server.terminate()
                server.join()
                listener.close()
            for label, (cpu, wall) in best.items():
                print(f"{name:<21} {framing:<11} {label:<20} {cpu:>11.1f} {wall:>12.1f}")
            ratio = best["h11"][0] / best["hand-written http11"][0]
            print(f"{'':<33} h11 / hand-written CPU: {ratio:.2f}")


if __name__ == "__main__":
    main()
