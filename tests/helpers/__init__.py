"""Helpers shared by more than one test folder.

Imported as `tests.helpers.<module>` (pytest runs with `--import-mode=importlib`, which
makes the `tests` tree importable by that name, as `tests.devorg.cometd_helpers` is).
Fixtures stay in each folder's conftest.py; what lives here is plain functions and
constants those fixtures and tests build on."""

from __future__ import annotations

from pathlib import Path

# The checkout: node scripts under tests/js, and PYTHONPATH for child interpreters.
ROOT = Path(__file__).resolve().parents[2]
