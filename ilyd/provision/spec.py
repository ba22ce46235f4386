"""What ilyd installs into an org: names, permissions and the PushTopics, declared once."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ilyd.enrich.fields import IlyField, fields_for

PERMISSION_SET_NAME = "Ily_Connector"
PERMISSION_SET_LABEL = "Ily Connector"
PERMISSION_SET_DESCRIPTION = (
    "Read/Edit on every Ily field, for the ilyd integration user. Managed by ilyd."
)

# System permissions as PermissionSet/Profile fields, with the Setup names admins see.
API_ENABLED = "PermissionsApiEnabled"
MODIFY_ALL_DATA = "PermissionsModifyAllData"
CUSTOMIZE_APPLICATION = "PermissionsCustomizeApplication"
MODIFY_METADATA = "PermissionsModifyMetadata"
STREAMING_API = "PermissionsStreamingApiEnabled"
MANAGE_PERMISSION_SETS = "PermissionsManageProfilesPermissionsets"
ASSIGN_PERMISSION_SETS = "PermissionsAssignPermissionSets"
VIEW_SETUP = "PermissionsViewSetup"
SYSTEM_PERMISSIONS: Mapping[str, str] = {
    API_ENABLED: "API Enabled",
    MODIFY_ALL_DATA: "Modify All Data",
    CUSTOMIZE_APPLICATION: "Customize Application",
    MODIFY_METADATA: "Modify Metadata Through Metadata API Functions",
    STREAMING_API: "Streaming API",
    MANAGE_PERMISSION_SETS: "Manage Profiles and Permission Sets",
    ASSIGN_PERMISSION_SETS: "Assign Permission Sets",
    VIEW_SETUP: "View Setup and Configuration",
}

# Object permissions ilyd needs, per object (Read/Create/Edit as ObjectPermissions fields).
OBJECT_NEEDS: Mapping[str, tuple[str, ...]] = {
    "Account": ("Read", "Edit"),
    "Lead": ("Read", "Edit"),
    "PushTopic": ("Create", "Read", "Edit"),
}


@dataclass(frozen=True)
class PushTopicSpec:
    """One PushTopic ilyd listens on: only the input fields, so its own writes to the Ily
    fields raise no event (NotifyForFields = Referenced)."""

    name: str
    sobject: str
    fields: tuple[str, ...]

    @property
    def query(self) -> str:
        """The topic's SOQL query."""
        return f"SELECT {', '.join(self.fields)} FROM {self.sobject}"  # noqa: S608 (constants)

    @property
    def channel(self) -> str:
        """The Bayeux channel to subscribe to."""
        return f"/topic/{self.name}"

    def body(self, api_version: str) -> dict[str, Any]:
        """The PushTopic record as ilyd wants it."""
        return {
            "Name": self.name,
            "Query": self.query,
            "ApiVersion": float(api_version),
            "IsActive": True,
            "NotifyForFields": "Referenced",
            "NotifyForOperationCreate": True,
            "NotifyForOperationUpdate": True,
            "NotifyForOperationUndelete": True,
            # A deleted record has nothing left to enrich.
            "NotifyForOperationDelete": False,
            "Description": f"ilyd: changes to the {self.sobject} fields it enriches from.",
        }

    def differences(self, record: Mapping[str, Any], api_version: str) -> list[str]:
        """Which settings of an existing PushTopic record differ from this spec."""
        wanted = self.body(api_version)
        out = []
        if _normal_query(str(record.get("Query") or "")) != _normal_query(self.query):
            out.append("Query")
        for key in ("ApiVersion", "IsActive", "NotifyForFields", "NotifyForOperationCreate",
                    "NotifyForOperationUpdate", "NotifyForOperationUndelete",
                    "NotifyForOperationDelete"):
            have = record.get(key)
            if key == "ApiVersion":
                have = float(have) if have is not None else None
            if have != wanted[key]:
                out.append(key)
        return out


def _normal_query(query: str) -> str:
    return re.sub(r"\s*,\s*", ",", re.sub(r"\s+", " ", query.strip())).lower()


PUSH_TOPICS: Mapping[str, PushTopicSpec] = {
    "Account": PushTopicSpec("IlyAccountChanges", "Account", ("Id", "Name", "Website")),
    "Lead": PushTopicSpec("IlyLeadChanges", "Lead",
                          ("Id", "Email", "Company", "Website", "IsConverted")),
}


def member_body(sobject: str) -> dict[str, object]:
    """The Tooling PlatformEventChannelMember selecting `sobject` for Change Data Capture on
    the standard ChangeEvents channel (source = "cdc")."""
    return {"FullName": f"ChangeEvents_{sobject}ChangeEvent",
            "Metadata": {"eventChannel": "ChangeEvents",
                         "selectedEntity": f"{sobject}ChangeEvent"}}


def wanted_fields(objects: tuple[str, ...]) -> list[tuple[str, IlyField]]:
    """(object, field) for every Ily field on the configured objects, catalogue order."""
    return [(sobject, f) for sobject in objects for f in fields_for(sobject)]
