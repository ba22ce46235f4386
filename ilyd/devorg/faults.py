"""Fault injection: rules the admin API installs and the dispatcher applies per request."""

from __future__ import annotations

import itertools
import random
import threading
from dataclasses import asdict, dataclass

from ilyd.devorg.web import Request, Response, json_response, sf_error

FAULT_KINDS = ("status", "drop", "latency", "lock_row")


@dataclass
class Fault:
    """One rule. It matches requests by path prefix, method and org; `count` limits how
    many requests it hits (None = until removed); `share` is the probability per match."""

    id: int
    kind: str  # status | drop | latency | lock_row (a share of written rows fail to lock)
    path_prefix: str = "/services/"
    method: str | None = None
    org: str | None = None  # org name; None = every org
    count: int | None = None
    share: float = 1.0
    status: int = 503
    error_code: str = "SERVER_UNAVAILABLE"
    message: str = "Server is temporarily unavailable. Please try again later."
    delay: float = 0.0

    def as_dict(self) -> dict[str, object]:
        """JSON form for the admin API."""
        return asdict(self)


class FaultSet:
    """The installed faults of a DevOrg."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, spec: dict[str, object]) -> Fault:
        """Install a rule from its JSON spec; raises ValueError on a bad spec."""
        kind = spec.get("kind")
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}, not {kind!r}")
        allowed = set(Fault.__dataclass_fields__) - {"id"}
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(f"unknown fault keys: {', '.join(sorted(unknown))}")
        fault = Fault(id=next(self._ids), **spec)  # type: ignore[arg-type]
        with self._lock:
            self._faults.append(fault)
        return fault

    def remove(self, fault_id: int | None = None) -> None:
        """Remove one rule, or all of them."""
        with self._lock:
            self._faults = [f for f in self._faults if fault_id is not None and f.id != fault_id]

    def list(self) -> list[Fault]:
        """The installed rules."""
        with self._lock:
            return list(self._faults)

    def take(self, request: Request, org_name: str | None) -> list[Fault]:
        """The rules that fire for this request (their counts are consumed)."""
        fired = []
        with self._lock:
            for fault in self._faults:
                if fault.kind == "lock_row":
                    continue
                if not request.path.startswith(fault.path_prefix):
                    continue
                if fault.method and fault.method.upper() != request.method:
                    continue
                if fault.org and fault.org != org_name:
                    continue
                if fault.count is not None and fault.count <= 0:
                    continue
                if random.random() >= fault.share:
                    continue
                if fault.count is not None:
                    fault.count -= 1
                fired.append(fault)
            self._faults = [f for f in self._faults if f.count is None or f.count > 0]
        return fired


def fault_response(fault: Fault) -> Response:
    """The answer a status fault gives: Salesforce's error array (OAuth paths: its JSON)."""
    if fault.kind == "drop":
        return Response(drop=True)
    if fault.error_code.startswith("oauth:"):
        return json_response({"error": fault.error_code[6:], "error_description": fault.message},
                             fault.status)
    return sf_error(fault.status, fault.error_code, fault.message)
