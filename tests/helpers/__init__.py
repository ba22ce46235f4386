"""Helpers shared by more than one test folder.

Imported as `tests.helpers.<module>` (pytest runs with `--import-mode=importlib`, which
makes the `tests` tree importable by that name, as `tests.devorg.cometd_helpers` is).
One way to do each thing: a devorg (`devorg_process`: `start_devorg`, `devorg_fixture`),
a state database (`store.database_fixture`), waiting on a condition (`waiting.wait_until`).
A folder's conftest.py assigns the fixtures it offers from these factories
(`dev = devorg_fixture(...)`, `db = database_fixture()`); the rest here is plain functions
and constants those fixtures and tests build on."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

# The checkout: node scripts under tests/js, and PYTHONPATH for child interpreters.
ROOT = Path(__file__).resolve().parents[2]


def load_script(relative: str, name: str) -> ModuleType:
    """A script of the checkout (bench/, scripts/: not packages) loaded by its path."""
    spec = importlib.util.spec_from_file_location(name, ROOT / relative)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module
