"""The daemon raises its soft open-files limit to the hard one at start."""

from __future__ import annotations

import subprocess
import sys

_CHILD = """
import resource
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 256))
from ilyd.daemon.process import raise_open_files_limit
print(raise_open_files_limit(), resource.getrlimit(resource.RLIMIT_NOFILE))
"""


def test_soft_open_files_limit_is_raised_to_the_hard_limit() -> None:
    # In a child: the limit is per process and this one runs other tests.
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.split() == ["(256,", "256)", "(256,", "256)"]


def test_a_soft_limit_already_at_the_hard_limit_is_left_alone() -> None:
    child = _CHILD.replace("(64, 256)", "(128, 128)")
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.split() == ["(128,", "128)", "(128,", "128)"]
