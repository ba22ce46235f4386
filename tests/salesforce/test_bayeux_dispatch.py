"""The Bayeux dispatcher: batches reach the handler in order on its own thread; those
that queued while the handler was busy arrive together."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from ilyd.salesforce.bayeux_dispatch import Dispatcher


class Handler:
    """Records each call; the first call waits until released."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.threads: set[str] = set()
        self.busy = threading.Event()
        self.release = threading.Event()

    def __call__(self, batch: Sequence[int]) -> None:
        self.threads.add(threading.current_thread().name)
        if not self.calls:
            self.busy.set()
            assert self.release.wait(10)
        self.calls.append(list(batch))


def test_batches_queued_while_the_handler_is_busy_arrive_together_in_order() -> None:
    handler = Handler()
    dispatcher = Dispatcher(handler, name="dispatch-test")
    dispatcher.start()
    dispatcher.submit([1, 2])
    assert handler.busy.wait(10)
    dispatcher.submit([3])
    dispatcher.submit([4, 5])
    dispatcher.submit([6])
    handler.release.set()
    dispatcher.stop(10)
    assert handler.calls == [[1, 2], [3, 4, 5, 6]]
    assert handler.threads == {"dispatch-test"}


def test_stop_delivers_what_is_queued_and_ends_the_thread() -> None:
    handler = Handler()
    handler.release.set()
    dispatcher = Dispatcher(handler, name="dispatch-test")
    for n in range(5):
        dispatcher.submit([n])
    dispatcher.start()
    dispatcher.stop(10)
    assert [n for call in handler.calls for n in call] == [0, 1, 2, 3, 4]
    assert not dispatcher.running


def test_wait_idle_returns_once_every_batch_is_handled() -> None:
    handler = Handler()
    dispatcher = Dispatcher(handler, name="dispatch-test")
    dispatcher.start()
    try:
        assert dispatcher.wait_idle(0)  # nothing submitted
        dispatcher.submit([1])
        assert handler.busy.wait(10)
        dispatcher.submit([2])
        assert not dispatcher.wait_idle(0.05)  # the handler still holds the first batch
        handler.release.set()
        assert dispatcher.wait_idle(10)
        assert handler.calls == [[1], [2]]
    finally:
        handler.release.set()
        dispatcher.stop(10)


def test_stop_waiting_ends_a_wait_for_a_busy_handler() -> None:
    handler = Handler()
    dispatcher = Dispatcher(handler, name="dispatch-test")
    dispatcher.start()
    try:
        dispatcher.submit([1])
        assert handler.busy.wait(10)
        waited: list[bool] = []
        waiter = threading.Thread(target=lambda: waited.append(dispatcher.wait_idle(30)))
        waiter.start()
        dispatcher.stop_waiting()
        waiter.join(10)
        assert waited == [True]
    finally:
        handler.release.set()
        dispatcher.stop(10)
