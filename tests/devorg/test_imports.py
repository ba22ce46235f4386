"""A devorg whose SOQL engine or streaming endpoint cannot be imported refuses to start,
rather than serving an org without SOQL checks or streaming while every test passes."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _run_with_broken(module: str, code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a process of its own where importing `module` fails, the way a syntax
    or import error inside it would (a None entry in sys.modules makes `import` raise
    ImportError)."""
    script = f"import sys\nsys.modules[{module!r}] = None\n{code}\nprint('started')\n"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.parametrize("module", ["ilyd.devorg.soql", "ilyd.devorg.cometd"])
def test_a_devorg_whose_soql_or_streaming_module_does_not_import_fails_to_start(
        module: str) -> None:
    run = _run_with_broken(module, "from ilyd.devorg import DevOrg\nDevOrg().start().stop()")
    assert run.returncode != 0
    assert "started" not in run.stdout
    assert f"Error: import of {module} halted" in run.stderr


def test_the_push_topic_rules_do_not_load_without_the_soql_engine() -> None:
    run = _run_with_broken("ilyd.devorg.soql", "import ilyd.devorg.rules")
    assert run.returncode != 0
    assert "Error: import of ilyd.devorg.soql halted" in run.stderr
