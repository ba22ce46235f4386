"""devorg: a local Salesforce org emulator. It never imports the daemon.

`DevOrg`, `OrgInfo` and `Change` are imported when first asked for (PEP 562): every
`ilyd` command line registers the `devorg` sub-command (ilyd/devorg/cli.py), and
importing the emulator itself cost each `ilyd ctl` call some 60 ms.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ilyd.devorg.app import DevOrg, OrgInfo
    from ilyd.devorg.changes import Change

__all__ = ["Change", "DevOrg", "OrgInfo"]

_HOMES = {"DevOrg": "ilyd.devorg.app", "OrgInfo": "ilyd.devorg.app",
          "Change": "ilyd.devorg.changes"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
