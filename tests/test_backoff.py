"""The one backoff helper: its exponential ceiling, its equal jitter, its limits."""

from __future__ import annotations

import random
import threading

import pytest

from ilyd.backoff import Backoff, pause, stop_waits_with, stop_waits_within
from ilyd.errors import StoppingError


def test_the_ceiling_doubles_from_the_initial_wait_and_stops_at_the_cap() -> None:
    backoff = Backoff(initial=5.0, cap=240.0)
    assert [backoff.ceiling(n) for n in range(1, 9)] == [5, 10, 20, 40, 80, 160, 240, 240]


def test_attempts_below_one_wait_like_the_first() -> None:
    backoff = Backoff(initial=1.0, cap=8.0)
    assert backoff.ceiling(0) == backoff.ceiling(-3) == backoff.ceiling(1) == 1.0


def test_another_growth_factor_is_honoured() -> None:
    backoff = Backoff(initial=0.5, cap=10.0, factor=1.6)
    assert [round(backoff.ceiling(n), 4) for n in (1, 2, 3)] == [0.5, 0.8, 1.28]
    assert backoff.ceiling(30) == 10.0


def test_thousands_of_failures_in_a_row_still_wait_the_cap_rather_than_overflow() -> None:
    backoff = Backoff(initial=1.0, cap=300.0)
    assert backoff.ceiling(5000) == 300.0
    assert backoff.delay(5000, 0.0) == 150.0


def test_equal_jitter_waits_between_half_the_ceiling_and_the_ceiling() -> None:
    backoff = Backoff(initial=1.0, cap=8.0)
    assert backoff.delay(3, 0.0) == 2.0
    assert backoff.delay(3, 0.5) == 3.0
    assert backoff.delay(3, 0.999) < 4.0


def test_below_the_cap_each_wait_starts_where_the_previous_attempts_range_ends() -> None:
    backoff = Backoff(initial=0.5, cap=60.0)
    for attempt in range(1, 7):  # ceilings 0.5 ... 32 s; the next is capped
        assert backoff.delay(attempt + 1, 0.0) >= backoff.delay(attempt, 0.999999)


def test_clients_failing_together_spread_out_within_the_bounds() -> None:
    backoff = Backoff(initial=4.0, cap=240.0)
    rand = random.Random(7)
    delays = [backoff.delay(2, rand.random()) for _ in range(200)]
    assert all(4.0 <= d <= 8.0 for d in delays)
    assert len({round(d, 6) for d in delays}) > 190


def test_without_a_given_draw_each_wait_is_drawn_afresh_within_the_bounds() -> None:
    backoff = Backoff(initial=2.0, cap=2.0)
    delays = {backoff.delay(1) for _ in range(50)}
    assert all(1.0 <= d <= 2.0 for d in delays)
    assert len(delays) > 1


@pytest.mark.parametrize(("initial", "cap", "factor"), [
    (0.0, 1.0, 2.0), (2.0, 1.0, 2.0), (1.0, 2.0, 0.5)])
def test_a_schedule_that_cannot_grow_or_wait_is_refused(initial: float, cap: float,
                                                        factor: float) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(initial=initial, cap=cap, factor=factor)


def test_a_pause_ends_with_a_stopping_error_as_soon_as_the_threads_stop_event_is_set() -> None:
    stopping = threading.Event()
    outcome: list[BaseException | None] = []

    def wait_to_retry() -> None:
        stop_waits_with(stopping)
        try:
            pause(600.0, "token")
        except StoppingError as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    waiter = threading.Thread(target=wait_to_retry, daemon=True)
    waiter.start()
    stopping.set()
    waiter.join(timeout=30)
    assert not waiter.is_alive()
    assert isinstance(outcome[0], StoppingError)
    assert "token" in str(outcome[0])
    assert outcome[0].retryable


def test_a_stop_event_bound_for_a_block_ends_its_pauses_and_is_unbound_after_it() -> None:
    stopping = threading.Event()
    stopping.set()
    stop_waits_with(None)
    with stop_waits_within(stopping), pytest.raises(StoppingError):
        pause(600.0)
    pause(0.0)  # the thread's own binding (none) is back: a plain wait, no error
