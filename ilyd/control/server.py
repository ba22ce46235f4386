"""The control socket's server side: binding, peer checks, one thread per connection.

The protocol is in `ilyd.control.protocol`. The socket is bound atomically (Supervisor's
trick: bind a private name, hard-link it into place), created 0660 before anyone can
connect; a stale socket is replaced, a live one means another daemon runs. Peers are
checked with SO_PEERCRED: root, our uid, or members of our group.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pykka
import structlog

from ilyd import metrics
from ilyd.control.protocol import ERROR_CODES, MAX_LINE_BYTES, PROTOCOL_VERSION, Verb, encode
from ilyd.errors import ControlError, IlydError

log = structlog.get_logger(__name__)

@dataclass(frozen=True)
class Peer:
    """Who is on the other end of a control connection."""

    pid: int
    uid: int
    gid: int


def peer_of(conn: socket.socket) -> Peer:
    """The connecting process's credentials (SO_PEERCRED)."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return Peer(*struct.unpack("3i", raw))


def peer_permitted(peer: Peer) -> bool:
    """Root, the daemon's own user, or a member of the daemon's group."""
    if peer.uid in (0, os.getuid()) or peer.gid == os.getgid():
        return True
    try:
        user = pwd.getpwuid(peer.uid).pw_name
        return user in grp.getgrgid(os.getgid()).gr_mem
    except KeyError:
        return False


def socket_is_live(path: Path) -> bool:
    """Whether something accepts connections on `path` (False for a stale file)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def bind_socket(path: Path) -> socket.socket:
    """Bind and listen on `path` (mode 0660); refuse if a live daemon already owns it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    private = path.with_name(f"{path.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        private.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o117)  # the socket is born 0660: no window where others connect
    try:
        sock.bind(str(private))
    finally:
        os.umask(old_umask)
    try:
        os.chmod(private, 0o660)
        for _ in range(2):
            try:
                os.link(private, path)  # atomic claim of the public name
                break
            except FileExistsError:
                if socket_is_live(path):
                    raise IlydError(
                        f"another ilyd is already running on control socket {path};"
                        " stop it first (ilyd ctl status shows it)"
                    ) from None
                log.info("control_socket_stale_replaced", path=str(path))
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        else:
            raise IlydError(f"cannot claim control socket {path}: it keeps reappearing")
    except BaseException:
        sock.close()
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            private.unlink()
    sock.listen(16)
    return sock


def _close_after_reply(conn: socket.socket) -> None:
    """Let the client read our last reply before we close: closing a socket with unread
    input resets the connection, and the peer loses what we wrote. Stop writing, then
    discard what the client still sends, up to a bound in bytes and time."""
    deadline = time.monotonic() + 2.0
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_WR)
        drained = 0
        while drained < 4 * MAX_LINE_BYTES and (left := deadline - time.monotonic()) > 0:
            conn.settimeout(left)
            if not (chunk := conn.recv(1 << 16)):
                break
            drained += len(chunk)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True  # a hung client must not keep the daemon from exiting
    owner: ControlServer


class _Connection(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.server.owner.serve_connection(self.connection, self.rfile, self.wfile)


class ControlServer:
    """Serves the verbs in `verbs` on a unix socket; handlers get `target` as first argument."""

    def __init__(self, path: Path, verbs: Mapping[str, Verb], target: Any) -> None:
        self.path = Path(path)
        self._verbs = verbs
        self._target = target
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        # Every verb and error code is exported from 0: a first failure shows in rate().
        for name in (*verbs, "unknown"):
            metrics.CONTROL_REQUESTS.labels(verb=name)
        for code in ERROR_CODES:
            metrics.CONTROL_REQUEST_FAILURES.labels(code=code)

    def start(self) -> None:
        """Bind the socket (raises IlydError if another daemon owns it) and start serving."""
        sock = bind_socket(self.path)
        server = _Server(str(self.path), _Connection, bind_and_activate=False)
        server.socket.close()
        server.socket = sock
        server.owner = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="ControlServer"
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, remove the socket file."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = None

    def serve_connection(self, conn: socket.socket, rfile: Any, wfile: Any) -> None:
        """Answer requests on one connection until the client closes it."""
        peer = peer_of(conn)
        permitted = peer_permitted(peer)
        while True:
            line = rfile.readline(MAX_LINE_BYTES + 1)
            if not line:
                return
            if len(line) > MAX_LINE_BYTES:
                self._reply_error(wfile, None, ControlError("invalid_args", "request too long"))
                _close_after_reply(conn)
                return
            request_id: Any = None
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ControlError("invalid_args", "a request is a JSON object")
                request_id = request.get("id")
                if not permitted:
                    raise ControlError(
                        "not_permitted",
                        f"uid {peer.uid} may not use this control socket",
                        "run as root or as a member of the daemon's group",
                    )
                self._handle(request, peer, wfile)
            except ControlError as exc:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._reply_error(wfile, request_id, exc)  # unless the client left
            except ValueError as exc:
                # JSONDecodeError, but also a line that is not UTF-8 and an integer longer
                # than Python converts (sys.get_int_max_str_digits()).
                self._reply_error(wfile, None, ControlError(
                    "invalid_args", f"not JSON: {exc}", "send one JSON object per line"))
            except RecursionError:
                self._reply_error(wfile, None, ControlError(
                    "invalid_args", "not JSON: nested too deeply",
                    "send one JSON object per line"))
            except (BrokenPipeError, ConnectionResetError):
                return

    def _handle(self, request: dict[str, Any], peer: Peer, wfile: Any) -> None:
        if request.get("v") != PROTOCOL_VERSION:
            raise ControlError(
                "invalid_args",
                f"unsupported protocol version {request.get('v')!r}; this daemon speaks"
                f" {PROTOCOL_VERSION}",
                "use the ilyd ctl of the same ilyd version",
            )
        name, args, request_id = request.get("verb"), request.get("args") or {}, request.get("id")
        verb = self._verbs.get(name) if isinstance(name, str) else None
        metrics.CONTROL_REQUESTS.labels(verb=verb.name if verb else "unknown").inc()
        if verb is None:
            raise ControlError("invalid_args", f"unknown verb {name!r}", "ilyd ctl --help")
        if not isinstance(args, dict):
            raise ControlError("invalid_args", "args must be a JSON object")
        if verb.mutating:
            log.info("control_request", verb=verb.name, args=args, peer_uid=peer.uid,
                     peer_pid=peer.pid)

        def progress(update: Mapping[str, Any]) -> None:
            wfile.write(encode({"v": PROTOCOL_VERSION, "id": request_id, "progress": update}))
            wfile.flush()

        try:
            result = verb.handler(self._target, args, progress)
        except ControlError:
            raise
        except pykka.Timeout as exc:
            raise ControlError("busy", "the daemon did not answer in time",
                               "retry; if it persists, check the logs") from exc
        except pykka.ActorDeadError as exc:
            raise ControlError("internal", "the daemon is shutting down") from exc
        except Exception as exc:
            log.exception("control_verb_failed", verb=verb.name)
            raise ControlError(
                "internal", f"{verb.name} failed: {exc}", "see the daemon log"
            ) from exc
        wfile.write(encode({"v": PROTOCOL_VERSION, "id": request_id, "ok": True, "final": True,
                            "result": result}))
        wfile.flush()

    @staticmethod
    def _reply_error(wfile: Any, request_id: Any, exc: ControlError) -> None:
        code = exc.code if exc.code in ERROR_CODES else "internal"
        metrics.CONTROL_REQUEST_FAILURES.labels(code=code).inc()
        error = {"code": code, "message": exc.message, "hint": exc.hint}
        wfile.write(encode({"v": PROTOCOL_VERSION, "id": request_id, "ok": False, "final": True,
                            "error": error}))
        wfile.flush()
