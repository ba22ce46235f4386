"""The startup-retry policy: the backoff's shape (what is retried: tests/test_errors.py)."""

from __future__ import annotations

import random

from ilyd.provision.retry import StartupRetry


class _Shortest(random.Random):
    """A random source that always draws 0: the shortest wait equal jitter allows."""

    def random(self) -> float:
        return 0.0


def test_delays_double_from_the_initial_one_and_stop_at_the_cap() -> None:
    retry = StartupRetry(initial=5.0, maximum=240.0, rand=_Shortest())
    # Equal jitter: the shortest wait is half of 5, 10, 20 ... 240.
    assert [retry.next_delay() for _ in range(8)] == [2.5, 5, 10, 20, 40, 80, 120, 120]
    assert retry.attempts == 8
    retry.reset()
    assert retry.next_delay() == 2.5


def test_equal_jitter_spreads_delays_but_never_below_half_or_past_the_cap() -> None:
    delays = []
    for seed in range(50):
        retry = StartupRetry(initial=4.0, maximum=240.0, rand=random.Random(seed))
        delays.append(retry.next_delay())
        capped = [retry.next_delay() for _ in range(10)][-1]
        assert 120.0 <= capped <= 240.0
    assert all(2.0 <= d <= 4.0 for d in delays)
    assert len({round(d, 6) for d in delays}) > 40  # orgs failing together spread out
