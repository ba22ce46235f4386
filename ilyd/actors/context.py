"""What an org's parts share, and nothing of the actors themselves: the org's secrets,
its `OrgContext` (config, state, a line to the supervisor), and the part factory type.

A leaf of `ilyd.actors`: every actor module imports it, it imports none of them but the
`Component` base (`ilyd.actors.component`, itself a leaf).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pykka
import structlog

from ilyd.actors.component import Component
from ilyd.actors.messages import DetailValue, OrgFailed, OrgReport
from ilyd.backoff import stop_waits_with
from ilyd.config import OrgConfig, OrgName
from ilyd.errors import StoreError
from ilyd.store import Database

__all__ = ["ChildFactory", "OrgContext", "OrgSecrets", "describe_error", "tell_supervisor"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class OrgSecrets:
    """The org's secrets, read when it starts. Never logged: repr shows only which are set."""

    client_secret: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    # The enrichment providers' API keys: (provider name, key) pairs.
    providers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @classmethod
    def read(cls, config: OrgConfig) -> OrgSecrets:
        """Read every secret the org's auth method needs (raises ConfigError if one is gone)."""

        def value(ref: Any) -> str | None:
            return ref.read() if ref is not None else None

        refresh = config.refresh_token if config.auth == "refresh_token" else None
        return cls(
            client_secret=value(config.client_secret),
            private_key=value(config.private_key),
            refresh_token=value(refresh),
            password=value(config.password),
            providers=tuple((p.name, p.secret.read()) for p in config.enrich.providers
                            if p.secret is not None),
        )


@dataclass(frozen=True)
class OrgContext:
    """What every part of an org gets: its config, secrets, state and a line to the supervisor."""

    name: OrgName
    config: OrgConfig
    incarnation: int
    secrets: OrgSecrets
    database: Database | None
    supervisor: pykka.ActorRef[Any] = field(repr=False)
    # Set when the org starts stopping: the retry waits of its threads end then, and its
    # parts take no new work.
    stopping: threading.Event = field(default_factory=threading.Event, repr=False,
                                      compare=False)

    def publish(self, **detail: DetailValue) -> None:
        """Merge detail into the org's status (a None value removes the key); non-blocking.

        A no-op once the supervisor has stopped (daemon shutdown)."""
        tell_supervisor(self.supervisor, OrgReport.of(self.name, self.incarnation, **detail))

    def fail(self, error: BaseException | str) -> None:
        """Report that the org cannot go on; the supervisor restarts it after a backoff."""
        tell_supervisor(self.supervisor, OrgFailed(self.name, self.incarnation,
                                                   describe_error(error),
                                                   disk=isinstance(error, StoreError)))

    def bind_thread(self) -> None:
        """Make the calling thread the org's (the org actor's, and a long job's thread):
        `org` in its log lines, and its retry waits cut short when the org stops."""
        structlog.contextvars.bind_contextvars(org=self.name)
        stop_waits_with(self.stopping)


def tell_supervisor(supervisor: pykka.ActorRef[Any], message: Any) -> None:
    """Tell the supervisor, dropping the message if it has stopped.

    At daemon stop the supervisor is marked dead before its `on_stop` stops the orgs, so
    everything an org and its children say while stopping (status detail, "stopped")
    would raise ActorDeadError; nobody is left to care, so it is dropped here, the one
    place every org-to-supervisor message goes through.
    """
    try:
        supervisor.tell(message)
    except pykka.ActorDeadError:
        log.debug("supervisor_gone_message_dropped", message=type(message).__name__)


ChildFactory = Callable[[OrgContext], Component]


def describe_error(error: BaseException | str) -> str:
    if isinstance(error, str):
        return error
    text = str(error) or type(error).__name__
    return text.splitlines()[0] if text else type(error).__name__
