"""Fixtures for config tests: a temp dir with a secret file and a config writer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A readable, private client secret file."""
    path = tmp_path / "client.secret"
    path.write_text("s3cret-value\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    """Write TOML text to tmp_path/ilyd.toml and return the path."""

    def write(text: str) -> Path:
        path = tmp_path / "ilyd.toml"
        path.write_text(text)
        return path

    return write


GOOD_ORG = """
[[org]]
name = "acme"
environment = "https://acme.my.salesforce.com"
auth = "client_credentials"
client_id = "3MVG9-client"
client_secret_file = "client.secret"
"""
