"""`ilyd ctl grant ORG --profile NAME… [--edit]`: field-level security on the Ily fields for
whole profiles, through each profile's own permission set (IsOwnedByProfile) — the
guide's field-by-field step in one command. FieldPermissions live only on permission
sets; a profile's hidden owned set is how its FLS is stored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ilyd import metrics
from ilyd.errors import ProvisioningError, SalesforceError
from ilyd.salesforce.rest import MAX_COLLECTION_SIZE, RestClient
from ilyd.salesforce.soql import soql


@dataclass
class GrantReport:
    """Per profile: how many field permissions were created or raised, and failures."""

    profiles: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    access: str = "read"

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"access": self.access, "granted": self.profiles, "unchanged": self.unchanged,
                "errors": self.errors}


def _owned_sets(rest: RestClient, names: Sequence[str]) -> dict[str, str]:
    """Profile name -> id of its owned permission set; unknown names raise."""
    rows = list(rest.query(soql(
        "SELECT Id, Profile.Name FROM PermissionSet WHERE IsOwnedByProfile = true"
        " AND Profile.Name IN {}", list(names))))
    found = {str((r.get("Profile") or {}).get("Name")): str(r["Id"]) for r in rows}
    by_lower = {k.lower(): (k, v) for k, v in found.items()}
    missing = [n for n in names if n.lower() not in by_lower]
    if missing:
        known = sorted(str(r["Name"]) for r in rest.query("SELECT Name FROM Profile"))
        raise ProvisioningError(
            f"no profile named {', '.join(repr(m) for m in missing)} in the org; profiles:"
            f" {', '.join(known)}")
    return dict(by_lower[n.lower()] for n in names)


def grant_profiles(rest: RestClient, profiles: Sequence[str], fields: Sequence[str], *,
                   edit: bool = False) -> GrantReport:
    """Give `profiles` Read (and Edit with `edit`) on `fields` (full names that exist)."""
    report = GrantReport(access="read/edit" if edit else "read")
    if not profiles:
        raise ProvisioningError("name at least one profile (--profile NAME)")
    owned = _owned_sets(rest, profiles)
    if not fields:
        return report
    rows = list(rest.query(soql(
        "SELECT Id, ParentId, Field, PermissionsRead, PermissionsEdit FROM FieldPermissions"
        " WHERE ParentId IN {} AND Field IN {}", list(owned.values()), list(fields))))
    existing = {(str(r["ParentId"]), str(r["Field"]).lower()): r for r in rows}
    for profile, ps_id in owned.items():
        creates, updates, same = [], [], 0
        for full in fields:
            row = existing.get((ps_id, full.lower()))
            if row is None:
                creates.append({"ParentId": ps_id, "SobjectType": full.split(".")[0],
                                "Field": full, "PermissionsRead": True, "PermissionsEdit": edit})
            elif not row.get("PermissionsRead") or (edit and not row.get("PermissionsEdit")):
                updates.append({"Id": row["Id"], "PermissionsRead": True,
                                "PermissionsEdit": edit or bool(row.get("PermissionsEdit"))})
            else:
                same += 1
        done = 0
        for call, records in ((rest.create_collection, creates),
                              (rest.update_collection, updates)):
            for i in range(0, len(records), MAX_COLLECTION_SIZE):
                try:
                    results = call("FieldPermissions", records[i:i + MAX_COLLECTION_SIZE])
                except SalesforceError as exc:
                    report.errors.append(f"{profile}: {exc}")
                    continue
                for saved in results:
                    if saved.success:
                        done += 1
                        metrics.PROVISION_ACTIONS.labels(action="grant_profile_field").inc()
                    else:
                        report.errors.append(f"{profile}: " + "; ".join(
                            f"{e.status_code}: {e.message}" for e in saved.errors))
        report.profiles[profile] = done
        report.unchanged[profile] = same
    return report
