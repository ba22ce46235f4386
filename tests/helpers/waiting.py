"""Waiting on a condition with a deadline (never sleep-and-hope): `wait_until`, the one
wait helper of the tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest


def wait_until(condition: Callable[[], Any], *, timeout: float = 20.0, what: str = "",
               interval: float = 0.02) -> Any:
    """Poll `condition` until it returns something truthy and return that; fail the test
    naming `what` once `timeout` seconds have passed. Everything after the condition is
    given by name, so a call reads the same whatever order it names them in."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or condition}")
        time.sleep(interval)

