"""The control socket's client: one request, its progress lines, its final answer."""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ilyd.control.protocol import PROTOCOL_VERSION
from ilyd.errors import ControlError, IlydError

__all__ = ["SYSTEMD_SOCKET", "ControlClient", "DaemonNotRunningError", "default_socket"]

SYSTEMD_SOCKET = Path("/run/ilyd/control.sock")


class DaemonNotRunningError(IlydError):
    """Nothing answers on the control socket."""


class ControlClient:
    """One connection to the daemon's control socket."""

    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self.path = path
        self._timeout = timeout

    def call(
        self,
        verb: str,
        args: Mapping[str, Any] | None = None,
        on_progress: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> Any:
        """Send one request; return its result, raise ControlError with the daemon's error."""
        final = None
        for message in self.stream(verb, args):
            if "progress" in message:
                if on_progress is not None:
                    on_progress(message["progress"])
            else:
                final = message
        assert final is not None
        if final.get("ok"):
            return final.get("result")
        error = final.get("error") or {}
        raise ControlError(error.get("code", "internal"), error.get("message", "?"),
                           error.get("hint"))

    def stream(self, verb: str, args: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Send one request; yield progress lines, then the final line."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self._timeout)
        try:
            sock.connect(str(self.path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            raise DaemonNotRunningError(
                f"ilyd is not running (nothing answers on {self.path})"
            ) from exc
        except PermissionError as exc:
            sock.close()
            raise ControlError("not_permitted", f"cannot open {self.path}: permission denied",
                               "run as root or as a member of the ilyd group") from exc
        request = {"v": PROTOCOL_VERSION, "id": uuid.uuid4().hex, "verb": verb,
                   "args": dict(args or {})}
        with sock, sock.makefile("rwb") as stream:
            stream.write(json.dumps(request).encode() + b"\n")
            stream.flush()
            while True:
                line = stream.readline()
                if not line:
                    raise ControlError("internal", "the daemon closed the connection")
                message = json.loads(line)
                yield message
                if "ok" in message:
                    return


def default_socket(config: str | None) -> Path:
    """--config's control socket, else systemd's, else the local ./var/run one."""
    if config:
        from ilyd.config import load_config  # noqa: PLC0415 (only with --config: ilyd ctl starts fast)

        return load_config(config).daemon.control_socket
    runtime = os.environ.get("RUNTIME_DIRECTORY")
    if runtime:
        return Path(runtime.split(":")[0]) / "control.sock"
    if SYSTEMD_SOCKET.exists():
        return SYSTEMD_SOCKET
    return Path("var/run/control.sock")
