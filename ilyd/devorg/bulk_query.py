"""Placeholder: filled in by a later step."""

from __future__ import annotations

from typing import Any


def register(router: Any, dev: Any) -> None:
    """Nothing yet."""
