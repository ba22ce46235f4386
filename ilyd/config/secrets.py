"""Secrets by reference: a file, an environment variable or a systemd credential.

The config never holds a secret value, only where to find it. References are checked
when the config is loaded (so `ilyd config check` reports a missing or world-readable
file) and read again when an org starts (so a rotated secret is picked up on restart,
and a secret removed since the load makes that org's start fail, not the daemon's). A
reload compares each org's `fingerprint` with the one taken at its start, and restarts
the org whose secrets changed even though its config did not.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from ilyd.errors import ConfigError


class SecretKind(StrEnum):
    """Where a secret is read from."""

    FILE = "file"
    ENV = "env"
    CREDENTIAL = "credential"  # systemd LoadCredential=, under $CREDENTIALS_DIRECTORY


@dataclass(frozen=True)
class SecretRef:
    """A reference to a secret: `key` is the config key it came from, for messages."""

    kind: SecretKind
    location: str  # a path, a variable name or a credential name
    key: str
    # What to say when the file does not exist: a refresh token is only there once
    # `ilyd connect` has stored it, which is a step to take, not a wrong path.
    missing: str = ""

    def describe(self) -> str:
        """A masked, human description: where the secret lives, never its value."""
        return f"<{self.kind}:{self.location}>"

    def path(self) -> Path | None:
        """The file the secret is in (for file and credential references)."""
        if self.kind is SecretKind.FILE:
            return Path(self.location)
        if self.kind is SecretKind.CREDENTIAL:
            directory = os.environ.get("CREDENTIALS_DIRECTORY")
            return Path(directory) / self.location if directory else None
        return None

    def is_missing(self) -> bool:
        """Whether this is a file (or credential) reference to a file that does not exist."""
        path = self.path()
        return path is not None and not path.exists() and not path.is_symlink()

    def problem(self) -> str | None:
        """What is wrong with the reference right now, or None when it can be read."""
        if self.kind is SecretKind.ENV:
            if not os.environ.get(self.location):
                return (
                    f"environment variable {self.location} is not set or empty;"
                    " export it or use a *_file / *_credential reference instead"
                )
            return None
        path = self.path()
        if path is None:
            return (
                "$CREDENTIALS_DIRECTORY is not set: systemd credentials only exist when"
                f" the unit has LoadCredential={self.location}:PATH; outside systemd use"
                f" {self.key.removesuffix('_credential')}_file"
            )
        try:
            info = path.stat()
        except FileNotFoundError:
            if self.missing:
                return self.missing
            return (f"secret file {path} does not exist; create it (mode 0600, or 0640 in"
                    " the daemon's group when another user writes it) or fix the path")
        except OSError as exc:
            return f"cannot stat secret file {path}: {exc.strerror}"
        if not stat.S_ISREG(info.st_mode):
            return f"{path} is not a regular file"
        if info.st_mode & stat.S_IROTH:
            return (
                f"secret file {path} is world-readable (mode {stat.S_IMODE(info.st_mode):04o});"
                f" run: chmod o-rwx {path}"
            )
        if not os.access(path, os.R_OK):
            return (
                f"secret file {path} is not readable by this user;"
                " give the ilyd group read access (chmod 640, chgrp ilyd)"
            )
        return None

    def read(self) -> str:
        """Return the secret (surrounding whitespace stripped); raise ConfigError if unreadable."""
        problem = self.problem()
        if problem is not None:
            raise ConfigError(f"{self.key}: {problem}")
        if self.kind is SecretKind.ENV:
            return os.environ[self.location].strip()
        path = self.path()
        assert path is not None
        try:
            value = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{self.key}: cannot read secret file {path}: {exc}") from exc
        if not value:
            raise ConfigError(f"{self.key}: secret file {path} is empty")
        return value


# Fingerprints are keyed per process: one kept in memory says nothing about the secret.
_FINGERPRINT_KEY = os.urandom(32)


def fingerprint(refs: Iterable[SecretRef]) -> bytes:
    """A keyed digest of what `refs` hold now (a problem counts as a value, so a secret
    that appears, changes or goes away changes the fingerprint)."""
    digest = hashlib.blake2b(key=_FINGERPRINT_KEY, digest_size=16)
    for ref in refs:
        try:
            value = "ok:" + ref.read()
        except ConfigError as exc:
            value = f"problem:{exc}"
        digest.update(f"{ref.key}\0{value}\0".encode())
    return digest.digest()
