"""Waiting on a condition with a deadline (never sleep-and-hope)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest


def wait_until(condition: Callable[[], Any], timeout: float = 20.0, what: str = "",
               *, interval: float = 0.02) -> Any:
    """Poll `condition` until it returns something truthy and return that; fail the test
    naming `what` once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or condition}")
        time.sleep(interval)


def wait_for(condition: Callable[[], Any], what: str, deadline: float = 20.0) -> Any:
    """`wait_until` in the streaming tests' argument order: what is awaited, then the
    deadline in seconds."""
    return wait_until(condition, timeout=deadline, what=what)
