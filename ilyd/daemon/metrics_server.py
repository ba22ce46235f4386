"""The Prometheus endpoint: `REGISTRY` served over HTTP on the configured address."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import prometheus_client
from prometheus_client.registry import Collector

from ilyd.errors import IlydError
from ilyd.metrics import REGISTRY


class WithoutOrgLabel(Collector):
    """A view of a registry that drops every sample labelled `org` (`[metrics] per_org = false`).

    Filtering at scrape time keeps the switch in one place: code that records per-org
    series never has to know whether they are exported.
    """

    def __init__(self, registry: Any) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Any]:
        """Yield the registry's families without their per-org samples."""
        for family in self._registry.collect():
            family.samples = [s for s in family.samples if "org" not in s.labels]
            yield family

    def restricted_registry(self, names: Any) -> WithoutOrgLabel:
        """`?name[]=` filtering of the HTTP handler: the view stays per-org-free."""
        return WithoutOrgLabel(self._registry.restricted_registry(names))


class MetricsServer:
    """The /metrics HTTP server thread; `url` is where it answers (port 0 resolved)."""

    def __init__(self, host: str, port: int, *, per_org: bool = True,
                 registry: Any = REGISTRY) -> None:
        """Serve `registry` (the daemon's own by default; the front passes its merge)."""
        registry = registry if per_org else WithoutOrgLabel(registry)
        try:
            self._server, self._thread = prometheus_client.start_http_server(
                port, addr=host, registry=registry
            )
        except OSError as exc:
            raise IlydError(
                f"cannot serve metrics on {host}:{port}: {exc.strerror}; change [metrics]"
                " listen or stop whatever holds the port"
            ) from exc
        bound_host, bound_port = self._server.server_address[:2]
        shown = f"[{bound_host}]" if ":" in str(bound_host) else bound_host
        self.url = f"http://{shown}:{bound_port}/metrics"

    def stop(self) -> None:
        """Stop serving and join the thread."""
        self._server.shutdown()
        self._server.server_close()
        if isinstance(self._thread, threading.Thread):
            self._thread.join(timeout=5)
