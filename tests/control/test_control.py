"""The control socket protocol over a real unix socket, with a verb table of its own."""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ilyd.control.client import ControlClient, DaemonNotRunningError
from ilyd.control.protocol import Verb
from ilyd.control.server import ControlServer
from ilyd.errors import ControlError, IlydError


def _echo(target, args, progress):
    return {"target": target, "args": dict(args)}


def _count(_target, args, progress):
    for step in range(args["n"]):
        progress({"step": step})
    return "done"


def _refuse(_target, _args, _progress):
    raise ControlError("unknown_org", "no org named 'x'", "ilyd ctl orgs")


def _crash(_target, _args, _progress):
    raise RuntimeError("boom")


VERBS = {v.name: v for v in (Verb("echo", _echo), Verb("count", _count),
                             Verb("refuse", _refuse), Verb("crash", _crash, mutating=True))}


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ilydc-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def server(sock_dir: Path) -> Iterator[ControlServer]:
    server = ControlServer(sock_dir / "c.sock", VERBS, "the-target")
    server.start()
    yield server
    server.stop()


def raw_exchange(path: Path, line: bytes) -> list[dict]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(line)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return [json.loads(x) for x in data.splitlines()]


def test_request_gets_a_versioned_final_reply_with_its_id(server):
    (reply,) = raw_exchange(server.path, b'{"v":1,"id":"r1","verb":"echo","args":{"a":1}}\n')
    assert reply == {"v": 1, "id": "r1", "ok": True, "final": True,
                     "result": {"target": "the-target", "args": {"a": 1}}}


def test_long_verbs_stream_progress_before_the_final_line(server):
    updates = []
    result = ControlClient(server.path).call("count", {"n": 3}, updates.append)
    assert result == "done"
    assert updates == [{"step": 0}, {"step": 1}, {"step": 2}]


def test_errors_carry_stable_codes_and_hints(server):
    with pytest.raises(ControlError) as info:
        ControlClient(server.path).call("refuse")
    assert (info.value.code, info.value.hint) == ("unknown_org", "ilyd ctl orgs")
    with pytest.raises(ControlError) as crashed:
        ControlClient(server.path).call("crash")
    assert crashed.value.code == "internal"
    assert "boom" in crashed.value.message


def test_unknown_verb_bad_version_and_garbage_are_invalid_args(server):
    replies = raw_exchange(
        server.path,
        b'{"v":1,"id":1,"verb":"nope"}\n{"v":9,"id":2,"verb":"echo"}\nnot json\n',
    )
    assert [r["error"]["code"] for r in replies] == ["invalid_args"] * 3
    assert [r["id"] for r in replies] == [1, 2, None]
    assert "unknown verb 'nope'" in replies[0]["error"]["message"]
    assert "unsupported protocol version 9" in replies[1]["error"]["message"]


def test_several_requests_share_one_connection(server):
    replies = raw_exchange(server.path, b'{"v":1,"id":1,"verb":"echo"}\n'
                                        b'{"v":1,"id":2,"verb":"echo"}\n')
    assert [r["id"] for r in replies] == [1, 2]


def test_live_socket_makes_a_second_server_refuse(server):
    second = ControlServer(server.path, VERBS, None)
    with pytest.raises(IlydError, match="another ilyd is already running"):
        second.start()
    assert ControlClient(server.path).call("echo")["target"] == "the-target"


def test_stale_socket_is_replaced(sock_dir):
    path = sock_dir / "stale.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens
    server = ControlServer(path, VERBS, "fresh")
    server.start()
    try:
        assert ControlClient(path).call("echo")["target"] == "fresh"
    finally:
        server.stop()


def test_client_says_daemon_not_running_when_no_socket(sock_dir):
    with pytest.raises(DaemonNotRunningError):
        ControlClient(sock_dir / "absent.sock").call("status")
