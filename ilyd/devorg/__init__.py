"""devorg: a local Salesforce org emulator. It never imports the daemon."""

from ilyd.devorg.app import DevOrg, OrgInfo
from ilyd.devorg.changes import Change

__all__ = ["Change", "DevOrg", "OrgInfo"]
