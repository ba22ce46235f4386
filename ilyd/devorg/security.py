"""Effective permissions of a user: system permissions, object permissions and FLS.

Salesforce's model, reduced to what devorg serves: a user's access is the union of every
permission set assigned to them (the profile's owned permission set included). A custom
field is readable only through a FieldPermissions row with PermissionsRead on one of
those sets — Modify All Data does not bypass field-level security.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ilyd.devorg.schema import OBJECT_PERMISSIONS, SYSTEM_PERMISSIONS, FieldDef, ObjectDef

_VIEW_SETUP = "PermissionsViewSetup"
# Setup objects only some users may read ("Special Access Rules" in the object reference);
# without one of these permissions the object does not exist for the user: SOQL answers
# INVALID_TYPE and describe NOT_FOUND. FieldPermissions is gated from API 49.0 and the
# others from Summer '20 (also 49.0); devorg gates every version, the stricter reading.
# https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_fieldpermissions.htm
# https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_objectpermissions.htm
# https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_permissionset.htm
# https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_permissionsetassignment.htm
READ_NEEDS: Mapping[str, tuple[str, ...]] = {
    "FieldPermissions": (_VIEW_SETUP,),
    "ObjectPermissions": (_VIEW_SETUP,),
    "PermissionSet": (_VIEW_SETUP, "PermissionsAssignPermissionSets",
                      "PermissionsManageProfilesPermissionsets"),
    "PermissionSetAssignment": (_VIEW_SETUP, "PermissionsAssignPermissionSets",
                                "PermissionsManageUsers"),
    # https://developer.salesforce.com/docs/platform/api-tooling/references/tooling-objects/tooling-platformeventchannelmember.html
    "PlatformEventChannelMember": (_VIEW_SETUP,),
}


@dataclass(frozen=True)
class Access:
    """What one user may do, computed from the org's permission records."""

    system: frozenset[str]  # e.g. {"PermissionsApiEnabled", …}
    objects: Mapping[str, frozenset[str]]  # sobject → {"PermissionsRead", …}
    readable_fields: frozenset[str]  # "Account.Ily_X__c"
    editable_fields: frozenset[str]

    def has(self, permission: str) -> bool:
        """Whether the user holds a system permission (e.g. "PermissionsApiEnabled")."""
        return permission in self.system

    def can(self, obj: ObjectDef, action: str) -> bool:
        """Object-level check; action is Read, Create, Edit or Delete."""
        if obj.setup:
            if action == "Read":
                needs = READ_NEEDS.get(obj.name)
                return needs is None or any(p in self.system for p in needs)
            if obj.name == "PlatformEventChannelMember":
                # Selecting entities for Change Data Capture: Customize Application only.
                return self.has("PermissionsCustomizeApplication")
            if obj.name == "CustomField":
                # Changing metadata: Customize Application plus Modify All Data or Modify
                # Metadata Through Metadata API Functions, as Salesforce requires.
                return self.has("PermissionsCustomizeApplication") and (
                    self.has("PermissionsModifyAllData") or self.has(
                        "PermissionsModifyMetadata"))
            return self.has("PermissionsModifyAllData") or self.has(
                "PermissionsManageProfilesPermissionsets") or self.has(
                "PermissionsCustomizeApplication")
        if self.has("PermissionsModifyAllData"):
            return True
        if action == "Read" and self.has("PermissionsViewAllData"):
            return True
        return f"Permissions{action}" in self.objects.get(obj.name, frozenset())

    def field_readable(self, obj: ObjectDef, f: FieldDef) -> bool:
        """FLS read: standard fields follow the object, custom fields need a grant."""
        if not f.custom:
            return True
        return f"{obj.name}.{f.name}" in self.readable_fields

    def field_editable(self, obj: ObjectDef, f: FieldDef) -> bool:
        """FLS edit: standard fields follow the object, custom fields need a grant."""
        if not f.custom:
            return True
        return f"{obj.name}.{f.name}" in self.editable_fields


def compute_access(
    user_id: str,
    assignments: list[Mapping[str, object]],
    permission_sets: Mapping[str, Mapping[str, object]],
    object_permissions: list[Mapping[str, object]],
    field_permissions: list[Mapping[str, object]],
) -> Access:
    """Union the permission sets assigned to `user_id` into one Access."""
    ps_ids = {str(a["PermissionSetId"]) for a in assignments if a.get("AssigneeId") == user_id}
    system = {p for ps_id in ps_ids for p in SYSTEM_PERMISSIONS
              if permission_sets.get(ps_id, {}).get(p)}
    objects: dict[str, set[str]] = {}
    for op in object_permissions:
        if op.get("ParentId") in ps_ids:
            granted = objects.setdefault(str(op["SobjectType"]), set())
            granted.update(p for p in OBJECT_PERMISSIONS if op.get(p))
    readable, editable = set(), set()
    for fp in field_permissions:
        if fp.get("ParentId") in ps_ids and fp.get("PermissionsRead"):
            readable.add(str(fp["Field"]))
            if fp.get("PermissionsEdit"):
                editable.add(str(fp["Field"]))
    return Access(frozenset(system), {k: frozenset(v) for k, v in objects.items()},
                  frozenset(readable), frozenset(editable))
