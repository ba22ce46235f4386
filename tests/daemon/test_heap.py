"""Giving the heap's free memory back (ilyd.daemon.heap)."""

from __future__ import annotations

from ilyd.daemon.heap import HeapTrimmer


def test_the_heap_is_trimmed_once_a_period_from_the_start_on():
    now = [100.0]
    heap = HeapTrimmer(every=30.0, clock=lambda: now[0])
    assert heap.available  # glibc, as on the systems the unit runs on
    heap.due()
    assert heap.trims == 0
    now[0] = 130.0
    heap.due()
    heap.due()
    assert heap.trims == 1
    now[0] = 159.0
    heap.due()
    assert heap.trims == 1
    now[0] = 160.0
    heap.due()
    assert heap.trims == 2
