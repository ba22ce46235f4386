"""The control protocol against generated input over a real unix socket: every line gets
one final error reply (or, when too long, one reply and the connection closed), and the
server — a bare ControlServer and a real daemon — keeps answering `status` afterwards."""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ilyd.control.protocol import MAX_LINE_BYTES, Verb
from ilyd.control.server import ControlServer
from ilyd.daemon.service import control_verbs
from tests.fuzz.settings import NETWORK


def _status(_target: Any, _args: Any, _progress: Any) -> dict[str, str]:
    return {"state": "ok"}


def _echo(_target: Any, args: Any, _progress: Any) -> Any:
    return dict(args)


VERBS = {v.name: v for v in (Verb("status", _status), Verb("echo", _echo))}
STATUS = b'{"v":1,"id":"last","verb":"status"}\n'

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=15,
)
requests = st.fixed_dictionaries(
    {}, optional={"v": st.just(1) | json_values, "id": json_values,
                  "verb": st.sampled_from([*control_verbs(), "echo", ""]) | json_values,
                  "args": json_values | st.dictionaries(
                      st.sampled_from(["org", "object", "since", "wait", "dry_run", "id",
                                       "report", "plan", "n"]), json_values)},
).map(lambda r: {**r, **({"v": 1} if r.get("v") == 1 else {})})
request_lines = st.one_of(
    requests.map(lambda r: json.dumps(r).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
).map(lambda line: line.replace(b"\n", b" ") + b"\n")


@pytest.fixture(scope="module")
def server() -> Iterator[ControlServer]:
    workdir = Path(tempfile.mkdtemp(prefix="ilydfc-", dir="/tmp"))
    server = ControlServer(workdir / "c.sock", VERBS, None)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def exchange(path: Path, data: bytes) -> list[dict[str, Any]]:
    """Send `data`, close our side, and read every reply line until the server closes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(path))
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(1 << 16):
            received += chunk
    return [json.loads(line) for line in received.splitlines()]


def assert_each_line_answered(replies: list[dict[str, Any]], lines: int) -> None:
    finals = [r for r in replies if r.get("final")]
    assert len(finals) == lines, replies
    for reply in finals:
        assert reply["v"] == 1
        if not reply["ok"]:
            # Bad input is the client's mistake, never the daemon's: no "internal" error.
            assert reply["error"]["code"] in {"invalid_args", "unknown_org"}, reply
            assert reply["error"]["message"]
    assert finals[-1]["id"] == "last"
    assert finals[-1]["ok"] is True, finals[-1].get("error")


# Each found a line the server dropped the connection on without a reply.
@example(lines=[b"\x80\n"])  # not UTF-8
@example(lines=[b"[" * 100_000 + b"\n"])  # nested deeper than the JSON parser recurses
@example(lines=[b'{"v":1,"id":' + b"9" * 5000 + b"}\n"])  # an int past Python's digit limit
@given(st.lists(request_lines, min_size=1, max_size=5))
@NETWORK
def test_every_line_gets_a_final_reply_and_the_connection_still_answers_status(server, lines):
    replies = exchange(server.path, b"".join(lines) + STATUS)
    assert_each_line_answered(replies, len(lines) + 1)


@given(st.integers(min_value=MAX_LINE_BYTES, max_value=MAX_LINE_BYTES + 4096),
       st.sampled_from([b"a", b"{", b"\x80", b" "]))
@NETWORK
def test_an_oversized_line_gets_one_error_and_the_connection_is_closed(server, size, fill):
    replies = exchange(server.path, fill * size + b"\n" + STATUS)
    assert [r["error"]["message"] for r in replies] == ["request too long"]
    assert exchange(server.path, STATUS)[0]["ok"] is True


@example(lines=[b"\x80\n"])
@given(st.lists(request_lines, min_size=1, max_size=4))
@NETWORK
def test_the_daemon_answers_every_line_and_keeps_answering_status(daemon_socket, lines):
    path, process = daemon_socket
    replies = exchange(path, b"".join(lines) + STATUS)
    assert_each_line_answered(replies, len(lines) + 1)
    assert process.poll() is None
