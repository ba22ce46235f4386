"""Orgs shared over worker processes: how many, which worker runs which org, and where.

One Python process runs one thread at a time, and a hundred busy orgs keep its
interpreter lock nearly always busy (bench/realtime.py measures it; the README has figures).
With `[daemon] processes` above one, `ilyd run` becomes a front process (control socket,
metrics, systemd, signals) over worker processes, each a whole daemon for its share of the
orgs. An org's worker is a hash of its name, so a reload that adds or removes orgs never
moves the others: an org never runs in two processes at once. Each worker keeps its own
state file (ilyd.store.layout): one file shared by two processes makes every write wait
for its write lock bouncing between them.
"""

from __future__ import annotations

import io
import pickle
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO

from ilyd.config import Config

# The front's pid, in each worker's environment: a worker knows its front even when the
# front is gone before the worker first looks at its parent (a worker running on would
# hold its state file from the next daemon).
FRONT_PID_ENV = "ILYD_FRONT_PID"


@dataclass(frozen=True)
class WorkerRole:
    """What a worker process is: its index among `count` workers."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> WorkerRole:
        """From `I/N` (the hidden `ilyd run --worker` option); ValueError if malformed."""
        index, _, count = text.partition("/")
        role = cls(int(index), int(count))
        if not 0 <= role.index < role.count:
            raise ValueError(f"worker {text!r}: the index must be below the count")
        return role

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(org: str, count: int) -> int:
    """The worker index that runs `org` (stable across processes and restarts)."""
    return zlib.crc32(org.encode()) % count


def own_orgs(config: Config, role: WorkerRole) -> Config:
    """`config` with only the orgs (and org errors) of `role`'s worker."""
    return replace(
        config,
        orgs=tuple(o for o in config.orgs if shard_of(o.name, role.count) == role.index),
        org_errors=tuple(e for e in config.org_errors
                         if shard_of(e.name, role.count) == role.index),
    )


def worker_socket(control_socket: Path, index: int) -> Path:
    """The control socket of worker `index`, beside the daemon's own (same permissions)."""
    return control_socket.with_name(f"{control_socket.name}.worker-{index}")


def _read_only(items: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(items)


class _ConfigPickler(pickle.Pickler):
    """Pickles Config's frozen mappings (MappingProxyType, which pickle does not know)
    as read-only views of plain dicts: this pickler's own rule, not one registered for
    every pickle in the process."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is MappingProxyType:
            return _read_only, (dict(obj),)
        return NotImplemented


# The front hands each worker its validated Config by pickle (on the worker's stdin), not
# the file's name: a worker started later — after a crash, or after the file was edited
# without a reload — must run the config the front runs.
def send_config(config: Config) -> bytes:
    """`config` as the front writes it to a worker's stdin."""
    buffer = io.BytesIO()
    _ConfigPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(config)
    return buffer.getvalue()


def receive_config(stream: BinaryIO) -> Config:
    """The config the front wrote to this worker's stdin."""
    # Only the front writes it, and whoever can run `ilyd run --worker` runs code anyway.
    config = pickle.load(stream)  # noqa: S301
    if not isinstance(config, Config):
        raise TypeError(f"a worker expects a Config on stdin, got {type(config).__name__}")
    return config
