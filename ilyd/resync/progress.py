"""A resync's progress: phase, counts per stage, rate and ETA; mirrored into metrics.

The engine thread updates it; the actor and the control thread read `snapshot()`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from ilyd import metrics

__all__ = ["STAGES", "Phase", "ResyncProgress"]

# read: rows read; enriched: outcomes computed; changed: differing from Salesforce;
# written: confirmed by Salesforce; failed: refused for good; skipped: left to the
# real-time path (changed during the sync) or deferred (provider unavailable).
STAGES = ("read", "enriched", "changed", "written", "failed", "skipped")


class Phase(StrEnum):
    """What the resync is doing."""

    STARTING = "starting"
    COUNTING = "counting"
    READING = "reading"  # query, enrich, compare, send batches
    SETTLING = "settling"  # waiting for ingest jobs; retrying failed rows
    PAUSED = "paused"  # API budget or Bulk batch allowance reached
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        """True once the run ended."""
        return self in (Phase.DONE, Phase.CANCELLED, Phase.FAILED)


class ResyncProgress:
    """Counters of one run. Thread-safe."""

    def __init__(self, org: str, run_id: str, objects: tuple[str, ...],
                 export: bool = True) -> None:
        self.org = org
        self.run_id = run_id
        self.objects = objects
        self._export = export
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(STAGES, 0)
        self._failures: dict[str, int] = {}
        self.phase = Phase.STARTING
        self.sobject: str | None = None
        self.mode: str | None = None
        self.total = 0
        self.reason: str | None = None  # why paused / failed
        self.error: str | None = None
        self.started = time.time()
        self._rate_mark = (time.monotonic(), 0)
        self._rate = 0.0
        self.finished_at: float | None = None
        self.report: str | None = None  # a dry run's report file

    def restore(self, counts: Mapping[str, int], failures: Mapping[str, int]) -> None:
        """Start from a checkpoint's durable counts (after a restart)."""
        with self._lock:
            for key, value in counts.items():
                if key in self._counts:
                    self._counts[key] = int(value)
            self._failures = {k: int(v) for k, v in failures.items()}
            self._rate_mark = (time.monotonic(), self._counts["read"])

    def add(self, stage: str, n: int = 1) -> None:
        """Count `n` records at `stage`."""
        if n <= 0:
            return
        with self._lock:
            self._counts[stage] += n
        if self._export:
            metrics.RESYNC_RECORDS.labels(org=self.org, stage=stage).inc(n)

    def add_failures(self, reasons: Mapping[str, int]) -> None:
        """Count records refused for good, by reason (Salesforce's statusCode)."""
        total = 0
        with self._lock:
            for reason, n in reasons.items():
                self._failures[reason] = self._failures.get(reason, 0) + n
                total += n
        self.add("failed", total)

    def set_phase(self, phase: Phase, reason: str | None = None) -> None:
        """Move to `phase` (`reason` says why, for paused/failed)."""
        with self._lock:
            self.phase, self.reason = phase, reason
            if phase.finished:
                self.finished_at = time.time()
        if self._export:
            metrics.RESYNC_RUNNING.labels(org=self.org).set(0 if phase.finished else 1)

    def count(self, stage: str) -> int:
        """The count at one stage."""
        with self._lock:
            return self._counts[stage]

    def _update_rate(self) -> float:
        now = time.monotonic()
        mark_time, mark_read = self._rate_mark
        if now - mark_time >= 1.0:
            instant = (self._counts["read"] - mark_read) / (now - mark_time)
            self._rate = instant if self._rate == 0 else 0.5 * self._rate + 0.5 * instant
            self._rate_mark = (now, self._counts["read"])
        return self._rate

    def snapshot(self) -> dict[str, Any]:
        """Everything `ilyd ctl` shows, JSON-able."""
        with self._lock:
            rate = self._update_rate()
            counts = dict(self._counts)
            remaining = max(0, self.total - counts["read"])
            eta = round(remaining / rate) if rate > 0 and remaining and not \
                self.phase.finished else None
            return {
                "org": self.org, "run_id": self.run_id, "phase": str(self.phase),
                "object": self.sobject, "mode": self.mode, "objects": list(self.objects),
                "total": self.total, **counts, "failures": dict(self._failures),
                "rate": round(rate, 1), "eta_seconds": eta, "reason": self.reason,
                "error": self.error, "started": self.started, "finished": self.finished_at,
                **({"dry_run": True, "report": self.report} if self.report else {}),
            }
