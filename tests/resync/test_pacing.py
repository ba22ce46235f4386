"""Page and job sizing of a Bulk resync (pure logic: no org needed)."""

from __future__ import annotations

import pytest

from ilyd.resync.pacing import PagePlan

MB = 1024 * 1024


def _simulate(total: int, bytes_per_row: int, *, max_page: int = 500_000,
              upload: int = 80 * MB) -> tuple[list[int], list[tuple[int, int]]]:
    """Pages read and jobs sent (rows, bytes) when every row changes."""
    plan = PagePlan(total=total, max_page=max_page, max_upload_bytes=upload, jobs=3)
    pages: list[int] = []
    jobs: list[tuple[int, int]] = []
    rows = size = 0
    while plan.position is not None and plan.position < total:
        page = min(plan.next_size(), total - plan.position)
        pages.append(page)
        plan.consumed(page, page, page * bytes_per_row)
        rows, size = rows + page, size + page * bytes_per_row
        if plan.position >= total or plan.send_now(rows, size):
            jobs.append((rows, size))
            rows = size = 0
    return pages, jobs


def test_a_million_short_rows_take_three_jobs_and_four_pages() -> None:
    pages, jobs = _simulate(1_000_000, 90)
    assert sum(pages) == 1_000_000
    assert len(pages) <= 4
    assert len(jobs) == 3
    assert jobs[0][0] < jobs[1][0]  # the first job is smaller: Salesforce starts early


@pytest.mark.parametrize("bytes_per_row", [90, 700, 5_000])
def test_no_job_passes_three_quarters_of_the_upload_limit(bytes_per_row: int) -> None:
    pages, jobs = _simulate(1_000_000, bytes_per_row)
    assert sum(pages) == 1_000_000
    assert max(size for _, size in jobs) <= 0.75 * 80 * MB + bytes_per_row


def test_the_first_page_is_a_short_probe_of_the_row_size() -> None:
    plan = PagePlan(total=1_000_000, max_page=500_000, max_upload_bytes=80 * MB, jobs=3)
    assert plan.next_size() == 2_000


def test_pages_without_changes_stay_reasonably_large() -> None:
    plan = PagePlan(total=1_000_000, max_page=500_000, max_upload_bytes=80 * MB, jobs=3)
    pages = 0
    while plan.position is not None and plan.position < 1_000_000:
        plan.consumed(min(plan.next_size(), 1_000_000 - plan.position), 0, 0)
        pages += 1
    assert pages <= 20


def test_a_resumed_read_of_unknown_position_reads_whole_units() -> None:
    plan = PagePlan(total=900_000, max_page=500_000, max_upload_bytes=80 * MB, jobs=3,
                    position=None, bytes_per_row=100)
    assert plan.next_size() == 450_000
