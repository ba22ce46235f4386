"""sd_notify(3) without libsystemd: datagrams to `$NOTIFY_SOCKET`; a no-op without it.

Protocol as in systemd's notify-selfcontained-example.py: a path starting with "/" is a
filesystem socket, "@" an abstract one.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

import structlog

log = structlog.get_logger(__name__)

_SEND_TIMEOUT_SECONDS = 0.5


class Notifier:
    """Sends READY/STATUS/RELOADING/STOPPING/WATCHDOG to the service manager."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]
        elif address and not address.startswith("/"):
            log.warning("notify_socket_ignored", notify_socket=address,
                        reason="neither a path nor an abstract socket")
            address = ""
        self._address = address
        self.watchdog_interval = _watchdog_interval(env)

    @property
    def enabled(self) -> bool:
        """Whether a service manager listens."""
        return bool(self._address)

    def send(self, *lines: str) -> bool:
        """Send one datagram with the given `KEY=value` lines; False if it could not be sent."""
        if not self._address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                # A listener that stops reading fills the datagram queue (10 messages on
                # Linux by default); the daemon must never hang on it, so wait briefly
                # and drop the message instead.
                sock.settimeout(_SEND_TIMEOUT_SECONDS)
                sock.connect(self._address)
                sock.sendall("\n".join(lines).encode())
        except TimeoutError:
            log.warning("sd_notify_dropped", lines=lines,
                        reason="the service manager is not reading")
            return False
        except OSError as exc:
            log.warning("sd_notify_failed", error=str(exc))
            return False
        return True

    def ready(self, status: str) -> None:
        """Startup (or a reload) finished."""
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        """A one-line summary shown by `systemctl status`."""
        self.send(f"STATUS={status}")

    def reloading(self) -> None:
        """A reload started (MONOTONIC_USEC lets systemd ≥ 253 match it to the request)."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> None:
        """Shutdown started."""
        self.send("STOPPING=1")

    def watchdog(self) -> None:
        """The daemon is alive (send only after a real liveness check)."""
        self.send("WATCHDOG=1")


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Half the watchdog timeout (sd_watchdog_enabled(3)), when it is meant for us."""
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or not usec.isdigit() or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 1_000_000 / 2
