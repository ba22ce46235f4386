"""`ilyd ctl` is what an operator types, often: its command line loads neither the org
emulator nor the HTTP client it never uses (each cost a tenth of a second per call)."""

from __future__ import annotations

import subprocess
import sys


def test_the_command_line_parser_loads_neither_devorg_nor_requests() -> None:
    script = ("import sys\n"
              "from ilyd.cli import build_parser\n"
              "build_parser().parse_args(['ctl', 'status'])\n"
              "print(sorted(m for m in ('requests', 'ilyd.devorg.app', 'xml.etree.ElementTree')"
              " if m in sys.modules))\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, check=True)
    assert run.stdout.strip() == "[]"


def test_devorg_is_still_there_when_asked_for() -> None:
    run = subprocess.run([sys.executable, "-c",
                          "from ilyd.devorg import Change, DevOrg, OrgInfo\n"
                          "import ilyd.devorg as d\n"
                          "print(DevOrg.__name__, OrgInfo.__name__, Change.__name__)\n"
                          "print(hasattr(d, 'Nothing'))"],
                         capture_output=True, text=True, timeout=60, check=True)
    assert run.stdout.split() == ["DevOrg", "OrgInfo", "Change", "False"]
