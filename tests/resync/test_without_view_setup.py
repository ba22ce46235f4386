"""A resync by an integration user without View Setup and Configuration: /limits is
refused, so the Bulk batch allowance is unknown and API usage comes from the headers."""

from __future__ import annotations

from .conftest import OrgEnv
from .test_engine import BOTH

NO_VIEW_SETUP = {"PermissionsViewSetup": False, "PermissionsModifyAllData": False,
                 "PermissionsViewAllData": False, "PermissionsManageUsers": False,
                 "PermissionsAssignPermissionSets": False,
                 "PermissionsManageProfilesPermissionsets": False}


def test_a_resync_through_bulk_ingest_completes_without_limits(env: OrgEnv) -> None:
    env.admin.seed("Account", 2500)
    env.admin.call("PATCH", f"/orgs/{env.info.name}/permissions", {"system": NO_VIEW_SETUP})
    engine = env.resync()
    engine.begin(BOTH)
    done = engine.run().snapshot()
    assert done["phase"] == "done", done
    assert done["written"] == done["changed"] > 0
    assert done["failed"] == 0
