"""The product, its tests, benchmarks, scripts and docs point only at what a reader of the
repository can open: no notes kept outside it, no issue numbers of its own tracker."""

from __future__ import annotations

import re
from pathlib import Path

from .conftest import ROOT

_TREES = ("ilyd", "tests", "bench", "scripts", "docs", "config", "systemd", "prometheus",
          "grafana")
_FILES = ("README.md", "Makefile", "pyproject.toml")
_SKIP_DIRS = {"node_modules", "__pycache__", ".venv", "snapshots"}
_SUFFIXES = {".py", ".md", ".toml", ".yaml", ".yml", ".json", ".js", ".service", ".txt",
             ".cfg", ".ini", ".sh", ""}
_OUTSIDE = [
    # Notes kept next to the checkout, never in it.
    re.compile(r"\.\./shared\b|\bshared/reference\b"),
    re.compile(r"\b(?:DESIGN|STYLE|anchors-style|streaming|salesforce-api|enrichment|"
               r"operations)\.md\b"),
    # The project's own tracker: "(issue 7)", "issue #12", "the issue's 10 s".
    re.compile(r"\(issue \d|\bissue #?\d|\bthe issue(?:'s)?\b", re.IGNORECASE),
    re.compile(r"\bclient engineer\b"),
]


def _files() -> list[Path]:
    found = [ROOT / name for name in _FILES if (ROOT / name).is_file()]
    for tree in _TREES:
        for path in (ROOT / tree).rglob("*"):
            if (path.is_file() and path.suffix in _SUFFIXES
                    and not _SKIP_DIRS.intersection(path.relative_to(ROOT).parts)
                    and path != Path(__file__)):
                found.append(path)
    return found


def test_no_file_points_at_notes_outside_the_repository_or_at_issue_numbers() -> None:
    files = _files()
    assert any(p.name == "bayeux.py" for p in files)  # the walk saw the product
    hits = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if any(pattern.search(line) for pattern in _OUTSIDE):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not hits, "say the fact in place or link docs/:\n" + "\n".join(hits)
