"""Operator docs: the metrics reference matches the code, and the README points at docs/."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

from .conftest import ROOT


def _generator():
    spec = importlib.util.spec_from_file_location(
        "gen_metrics_doc", ROOT / "scripts" / "gen_metrics_doc.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_metrics_doc_equals_the_generated_one():
    committed = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    assert committed == _generator().render(), (
        "docs/metrics.md is stale: run .venv/bin/python scripts/gen_metrics_doc.py"
    )


def test_metrics_doc_lists_every_ilyd_metric_with_its_served_name():
    from .conftest import exported_names

    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z_:]+)`", text, flags=re.MULTILINE))
    served = {n for n in exported_names() if not n.endswith(("_bucket", "_sum", "_count"))}
    assert served <= documented | {n.removesuffix("_total") for n in documented}
    assert "ilyd_records_enriched_total" in documented


def test_readme_operating_section_links_to_existing_docs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Operating ilyd", 1)
    assert len(section) == 2, "README.md has no 'Operating ilyd' section"
    body = section[1].split("\n## ", 1)[0]
    links = set(re.findall(r"\]\(((?:docs|grafana|prometheus)/[^)#]+)", body))
    assert {"docs/install.md", "docs/runbook.md", "docs/metrics.md"} <= links
    for link in links:
        assert (ROOT / link).exists(), f"README links to missing {link}"


def test_runbook_has_no_orphan_alert_sections():
    from .conftest import alert_rules

    text = (ROOT / "docs" / "runbook.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^## (Ilyd\w+)", text, flags=re.MULTILINE))
    assert sections == {rule["alert"] for rule in alert_rules()}


def _ctl_help_verbs() -> set[str]:
    """The verbs `ilyd ctl --help` lists, read from a real `ilyd ctl --help` run."""
    done = subprocess.run([sys.executable, "-m", "ilyd", "ctl", "--help"], capture_output=True,
                          text=True, timeout=60, check=True)
    block = done.stdout.split("positional arguments:", 1)[1].split("\n\n", 1)[0]
    # Each verb starts a line indented by four spaces; its help wraps further right.
    return set(re.findall(r"^ {4}([a-z][a-z-]*)\b", block, flags=re.MULTILINE))


def _readme_ctl_table_verbs() -> set[str]:
    """The verbs the README's `ilyd ctl` table names in its first column."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## ilyd ctl\n", 1)[1].split("\n## ", 1)[0]
    verbs = set()
    for row in re.findall(r"^\| (.+?) \|", section, flags=re.MULTILINE):
        verbs.update(re.findall(r"`([a-z][a-z-]*)\b", row))
    return verbs


def test_every_verb_of_ilyd_ctl_help_is_in_the_readme_ctl_table():
    verbs = _ctl_help_verbs()
    assert {"status", "orgs", "check", "resync"} <= verbs  # the help was read at all
    missing = verbs - _readme_ctl_table_verbs()
    assert not missing, f"README.md's `ilyd ctl` table lacks: {', '.join(sorted(missing))}"


def test_metrics_doc_headings_name_no_issue():
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    headings = re.findall(r"^#+ .*$", text, flags=re.MULTILINE)
    assert headings
    assert not [h for h in headings if re.search(r"\bissue\b", h, flags=re.IGNORECASE)]


def test_the_readme_layout_names_every_package_and_loose_module_of_the_tree():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## How the code is laid out\n", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`ilyd/([a-z_]+)/`", section))
    named_modules = set(re.findall(r"`([a-z_]+\.py)`", section))
    package = ROOT / "ilyd"
    packages = {p.name for p in package.iterdir() if (p / "__init__.py").exists()}
    loose = {p.name for p in package.glob("*.py")} - {"__init__.py", "__main__.py", "cli.py"}
    assert named == packages, f"README layout vs tree: {sorted(named ^ packages)}"
    assert loose <= named_modules, f"loose modules not in the README: {loose - named_modules}"
    assert "`ilyd/cli.py`" in section
