"""The refresh token's file: the one copy every ilyd process of an org reads and writes.

With refresh token rotation on, Salesforce hands out a new refresh token on each refresh
and treats a second use of the old one as theft: it revokes the current refresh token and
its access tokens. So a process must never refresh with a copy another process already
spent. Every refresh of a file-backed token (the daemon's, and `ilyd check`, `ilyd tail`
or `ilyd connect` run beside it) takes an exclusive lock on `<file>.lock` in the same
directory, re-reads the token under that lock, and writes a rotated token back durably
(temporary file, fsync, rename, fsync of the directory) before the lock is let go.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import structlog

from ilyd.errors import StoreError

__all__ = ["RefreshTokenFile"]

log = structlog.get_logger(__name__)


class RefreshTokenFile:
    """A refresh token stored in `path` (mode 0600), locked through `<path>.lock`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    def __repr__(self) -> str:
        return f"RefreshTokenFile({str(self.path)!r})"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the exclusive lock every process takes to refresh with this token.

        A lock file that cannot be created (a read-only directory, such as systemd's
        credentials) cannot hold a rotated token either: the refresh then runs unlocked,
        which is safe only with rotation off, and says so in the log.
        """
        fd = self._open_lock()
        if fd is None:
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _open_lock(self) -> int | None:
        try:
            return os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except PermissionError:
            pass
        except OSError as exc:
            log.warning("sf_refresh_token_unlocked", path=str(self.lock_path), error=str(exc))
            return None
        try:
            # flock needs no write access: another user's lock file still serialises us.
            return os.open(self.lock_path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            log.warning("sf_refresh_token_unlocked", path=str(self.lock_path), error=str(exc))
            return None

    def read(self) -> str | None:
        """The stored token, or None when the file is missing or empty."""
        try:
            return self.path.read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f"cannot read the refresh token file {self.path}: {exc}") from exc

    def write(self, refresh_token: str) -> None:
        """Replace the stored token atomically and durably, mode 0600."""
        directory = self.path.parent
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(refresh_token + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
            # The rename is durable only once the directory entry is on disk.
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise StoreError(f"cannot store the refresh token in {self.path}: {exc}; "
                             "make the directory writable by ilyd") from exc
