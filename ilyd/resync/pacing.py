"""How big each result page (hence each ingest job) is, and when to poll a job again.

API calls are the scarce resource (≤ 30 per million records): every ingest job costs
create + upload + close + a "changed elsewhere" query + at least one status poll, and
every result page one GET. So an object is read in a handful of pages, each becoming
one job. The first and last are half-size: the first so Salesforce starts processing
early while the rest is enriched, the last so little is left to wait for once the read
ends. A page is also kept small enough that its changed rows fit 3/4 of the upload
limit, judged by the bytes per row seen so far — measured first on a 2,000-row probe
page, since a page cannot be split between jobs (the checkpoint's unit is the page).
Long rows therefore mean more, smaller jobs: ≤ 30 calls per million holds for rows of
up to ~200 bytes of changed CSV (an unknown company's), not for rows of long data.

Polling a job estimates its finish from the rows Salesforce reports processed, so a
large job costs a few polls, not one every few seconds.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from ilyd.resync.budget import ROWS_PER_BATCH
from ilyd.salesforce.bulk import BulkClient, JobInfo, PollPolicy

__all__ = ["PagePlan", "wait_for_job"]

# A page's changed rows may fill this share of the upload limit (rows vary in size).
_UPLOAD_HEADROOM = 0.75
_MIN_PAGE = 100
# Bytes per changed row assumed before any was seen: rows with long company data.
_PRIOR_BYTES = 1024
_PROBE_ROWS = 2_000
# Poll a little after the estimated finish: one poll too late beats one too early.
_LATE = 1.1


@dataclass
class PagePlan:
    """Page sizes for one object's read: `next_size()` before each page, `consumed()`
    after it."""

    total: int  # the object's COUNT()
    max_page: int  # settings.page_size: the largest page ever asked for
    max_upload_bytes: int
    jobs: int = 4  # pages (≈ ingest jobs) an object of at most jobs × max_page rows takes
    position: int | None = 0  # rows read so far; None after a resume (unknown)
    bytes_per_row: float | None = None

    def next_size(self) -> int:
        """maxRecords for the next page: up to the next batch boundary (the first at
        half a unit, then every unit), no more rows than fit the upload target."""
        # Enough pages that a unit is at most max_page (first and last count half).
        pages = max(self.jobs, math.ceil(self.total / self.max_page) + 1) if self.total else 1
        unit = self.total / max(1, pages - 1)
        size = unit
        if self.position is not None and self.total and unit:
            boundary = unit / 2 + unit * math.floor((self.position + 1 - unit / 2) / unit + 1) \
                if self.position + 1 > unit / 2 else unit / 2
            size = min(boundary, self.total) - self.position
        if self.position == 0 and self.bytes_per_row is None:
            # A short first page measures the rows: a page is one job at most, so the
            # guess must not be wrong by a page of long rows.
            size = min(size, _PROBE_ROWS)
        fitting = self.fitting_rows()
        if self.bytes_per_row is not None and fitting < unit:
            size = fitting  # the upload limit binds: full pages, boundaries ignored
        return max(_MIN_PAGE, min(self.max_page, math.ceil(min(size, fitting))))

    def fitting_rows(self) -> float:
        """Changed rows that fit the upload target at the bytes per row seen so far (a
        pessimistic guess before the first page: the first job must not be too big)."""
        return self.max_upload_bytes * _UPLOAD_HEADROOM / (self.bytes_per_row or _PRIOR_BYTES)

    def send_now(self, rows: int, size: int) -> bool:
        """Whether a batch of `rows` changed rows / `size` bytes goes now rather than
        with the next page: when the next page might not fit beside it, or when it is
        a fair share of a job already."""
        following = min(self.next_size(), self.fitting_rows())
        return rows >= 0.4 * following or \
            size + following * (self.bytes_per_row or _PRIOR_BYTES) > \
            self.max_upload_bytes * _UPLOAD_HEADROOM

    def consumed(self, rows: int, changed: int, spool_bytes: int) -> None:
        """A page was read: `rows` rows, of which `changed` took `spool_bytes` of CSV."""
        if self.position is not None:
            self.position += rows
        if changed:
            seen = spool_bytes / changed
            self.bytes_per_row = max(seen, self.bytes_per_row or 0.0)


def wait_for_job(bulk: BulkClient, kind: str, job_id: str, policy: PollPolicy, *,
                 rows: int | None = None, started: float | None = None,
                 sleep: Callable[[float], object] = time.sleep) -> JobInfo:
    """Poll a Bulk job until it is terminal; return its final status.

    For a job of `rows` rows that reports progress, the next poll comes when the rest
    should be done at the rate seen so far (since `started`, a `time.monotonic()` of
    when it began processing, or between two polls), a little late rather than early;
    otherwise waits start at `policy.initial` and grow by `policy.factor`. Always
    within [initial, max_interval].
    """
    interval = policy.initial
    previous: tuple[float, int] | None = (started, 0) if started is not None else None
    polled = False
    while True:
        info = bulk.job(kind, job_id)
        if info.state.terminal:
            return info
        now = time.monotonic()
        done = info.records_processed
        if previous is not None and done > previous[1] and rows and rows > done:
            # Progress is reported per internal batch of 10,000 rows: on average half
            # a batch more is done than reported. Never wait longer than the job has
            # been watched: a rate misjudged early costs one poll, not a long idle wait.
            ahead = min(ROWS_PER_BATCH / 2, (rows - done) / 2)
            elapsed = max(1e-3, now - previous[0])
            rate = (done + ahead - previous[1]) / elapsed
            interval = min(_LATE * (rows - done - ahead) / rate, elapsed)
        elif polled:
            interval *= policy.factor
        interval = max(policy.initial, min(policy.max_interval, interval))
        previous, polled = (now, done), True
        sleep(random.uniform(interval, interval * 1.1))
