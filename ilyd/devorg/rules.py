"""Object-specific write rules: computed fields, uniqueness, permission objects, PushTopic
query validation and Tooling CustomField metadata checks."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ilyd.devorg import soql
from ilyd.devorg.cometd_cdc import check_channel_member
from ilyd.devorg.cometd_state import streaming_of
from ilyd.devorg.dml_ops import RecordError
from ilyd.devorg.query_schema import OrgSchema
from ilyd.devorg.schema import METADATA_TYPES, ObjectDef

if TYPE_CHECKING:
    from ilyd.devorg.org import OrgState, Record

_DEV_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|_(?!_))*(?<!_)$")
_STREAMING_OBJECTS = frozenset({"account", "lead"})


def _duplicate(org: OrgState, sobject: str, rec: Record,
               pending: dict[str, tuple[str, Record]], keys: tuple[str, ...]) -> str | None:
    """Id of another record with the same values for `keys` (case-insensitive strings)."""
    def norm(r: Record) -> tuple[object, ...]:
        return tuple(str(r.get(k)).lower() for k in keys)

    want = norm(rec)
    candidates = [*org.tables[sobject].live.values(),
                  *(r for s, r in pending.values() if s == sobject)]
    for other in candidates:
        if other.get("Id") != rec.get("Id") and norm(other) == want:
            return str(other["Id"])
    return None


def before_write(org: OrgState, obj: ObjectDef, rec: Record, old: Record | None,
                 pending: dict[str, tuple[str, Record]]) -> None:
    """Complete and check a record about to be written; raises RecordError."""
    name = obj.name
    if name in ("Lead", "User"):
        rec["Name"] = " ".join(str(v) for v in (rec.get("FirstName"), rec.get("LastName")) if v)
    elif name == "PermissionSet":
        if old is None:
            rec.update(IsOwnedByProfile=False, IsCustom=True, Type="Regular")
        if not _DEV_NAME.match(str(rec.get("Name"))):
            raise RecordError("FIELD_INTEGRITY_EXCEPTION",
                              "The API Name can only contain underscores and alphanumeric "
                              "characters. It must be unique, begin with a letter, not include "
                              "spaces, not end with an underscore, and not contain two "
                              "consecutive underscores.", ["Name"])
        dup = _duplicate(org, name, rec, pending, ("Name",))
        if dup:
            raise RecordError(
                "DUPLICATE_VALUE",
                f"duplicate value found: Name duplicates value on record with id: {dup}",
                ["Name"])
    elif name == "PermissionSetAssignment":
        if _duplicate(org, name, rec, pending, ("AssigneeId", "PermissionSetId")):
            raise RecordError("DUPLICATE_VALUE", "duplicate value found: <unknown> duplicates "
                              "value on record with id: <unknown>")
    elif name == "FieldPermissions":
        _check_field_permission(org, rec, pending)
    elif name == "ObjectPermissions":
        if org.object_def(str(rec.get("SobjectType"))) is None:
            raise RecordError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                              f"Object Name: bad value for restricted picklist field: "
                              f"{rec.get('SobjectType')}", ["SobjectType"])
        if _duplicate(org, name, rec, pending, ("ParentId", "SobjectType")):
            raise RecordError("DUPLICATE_VALUE", "duplicate value found: <unknown> duplicates "
                              "value on record with id: <unknown>")
    elif name == "PushTopic":
        _check_push_topic(org, rec, pending)
    elif name == "CustomField":
        _check_custom_field(org, rec, old, pending)
    elif name == "PlatformEventChannelMember":
        check_channel_member(org, rec, old, pending,
                             streaming_of(org).settings.cdc_entity_limit)


def before_delete(org: OrgState, obj: ObjectDef, old: Record) -> None:
    """Refuse deletes Salesforce refuses; raises RecordError."""
    if obj.name == "PermissionSet" and old.get("IsOwnedByProfile"):
        raise RecordError("INSUFFICIENT_ACCESS_OR_READONLY",
                          "insufficient access rights on object id")


def _check_field_permission(org: OrgState, rec: Record,
                            pending: dict[str, tuple[str, Record]]) -> None:
    sobject = str(rec.get("SobjectType"))
    field_name = str(rec.get("Field"))
    obj = org.object_def(sobject)
    parts = field_name.split(".", 1)
    fdef = obj.field_map.get(parts[1].lower()) if obj and len(parts) == 2 else None
    if obj is None:
        raise RecordError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                          f"Object Name: bad value for restricted picklist field: {sobject}",
                          ["SobjectType"])
    if fdef is None or parts[0].lower() != obj.name.lower() or (not fdef.custom and \
            fdef.name not in ("Website", "Industry", "NumberOfEmployees", "AnnualRevenue",
                              "Email", "Phone", "Description")):
        raise RecordError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                          f"Field Name: bad value for restricted picklist field: {field_name}",
                          ["Field"])
    rec["SobjectType"] = obj.name
    rec["Field"] = f"{obj.name}.{fdef.name}"
    if rec.get("PermissionsEdit") and not rec.get("PermissionsRead"):
        raise RecordError("FIELD_INTEGRITY_EXCEPTION",
                          "Permission Edit depends on permission(s): Read", ["PermissionsEdit"])
    if _duplicate(org, "FieldPermissions", rec, pending, ("ParentId", "Field")):
        raise RecordError("DUPLICATE_VALUE",
                          "duplicate value found: <unknown> duplicates value on record with id: "
                          "<unknown>")


_PT_FORBIDDEN = (
    (re.compile(r"\(\s*select\b", re.I), "semi/anti join sub-selects are not supported"),
    (re.compile(r"\b(count|avg|max|min|sum)\s*\(", re.I), "Aggregate queries are not supported"),
    (re.compile(r"\bgroup\s+by\b", re.I), "Aggregate queries are not supported"),
    (re.compile(r"\blimit\b", re.I), "'LIMIT' is not allowed"),
    (re.compile(r"\border\s+by\b", re.I), "'ORDER BY' clause is not allowed"),
    (re.compile(r"\bnot\b(?!\s+in\b)", re.I), "'NOT' is not supported"),
)
_PT_SHAPE = re.compile(r"^\s*select\s+(?P<fields>.+?)\s+from\s+(?P<obj>\w+)(?P<rest>.*)$",
                       re.I | re.S)


def _check_push_topic(org: OrgState, rec: Record,
                      pending: dict[str, tuple[str, Record]]) -> None:
    version = rec.get("ApiVersion")
    if not isinstance(version, int | float) or version <= 20.0:
        raise RecordError("FIELD_INTEGRITY_EXCEPTION",
                          "ApiVersion: API version must be greater than 20.0", ["ApiVersion"])
    query = str(rec.get("Query") or "")
    m = _PT_SHAPE.match(query)
    if m is None:
        raise RecordError("INVALID_FIELD", f"unexpected token: {query.split(' ', 1)[0]}", ["Query"])
    for pattern, message in _PT_FORBIDDEN:
        if pattern.search(query):
            raise RecordError("INVALID_FIELD", message, ["Query"])
    if m["obj"].lower() not in _STREAMING_OBJECTS:
        raise RecordError("INVALID_FIELD", f"Streaming API does not support the object: {m['obj']}",
                          ["Query"])
    fields = [f.strip() for f in m["fields"].split(",")]
    if any("." in f for f in fields):
        raise RecordError("INVALID_FIELD", "relationships are not supported", ["Query"])
    if not any(f.lower() == "id" for f in fields):
        raise RecordError("INVALID_FIELD", "Query must include Id field", ["Query"])
    _check_soql(org, query)
    create, update = rec.get("NotifyForOperationCreate"), rec.get("NotifyForOperationUpdate")
    delete, undelete = rec.get("NotifyForOperationDelete"), rec.get("NotifyForOperationUndelete")
    if create and update and delete and undelete:
        rec["NotifyForOperations"] = "All"
    elif create and not (update or delete or undelete):
        rec["NotifyForOperations"] = "Create"
    elif update and not (create or delete or undelete):
        rec["NotifyForOperations"] = "Update"
    else:
        rec["NotifyForOperations"] = "Extended"
    dup = _duplicate(org, "PushTopic", rec, pending, ("Name",))
    if dup:
        raise RecordError("DUPLICATE_VALUE",
                          f"duplicate value found: Name duplicates value on record with id: {dup}",
                          ["Name"])


def _check_soql(org: OrgState, query: str) -> None:
    """Parse and type-check the PushTopic query with the SOQL engine."""
    try:
        parsed = soql.parse(query)
        soql.execute(parsed, OrgSchema(org, org.identity.user_id), _NoRows())
    except soql.SoqlError as exc:
        raise RecordError("INVALID_FIELD", exc.message, ["Query"]) from None


class _NoRows:
    def scan(self, sobject: str) -> list[dict[str, object]]:
        return []

    def get(self, sobject: str, record_id: str) -> None:
        return None


def _check_custom_field(org: OrgState, rec: Record, old: Record | None,
                        pending: dict[str, tuple[str, Record]]) -> None:
    full = str(rec.get("FullName") or "")
    sobject, _, field_name = full.partition(".")
    obj = org.object_def(sobject)
    if obj is None or not obj.custom_fields_allowed:
        raise RecordError("INVALID_FIELD", f"Cannot create a new component with the namespace: "
                          f"{sobject}. Only components in the same namespace as the organization "
                          "can be created through the API", ["FullName"])
    dev = field_name[:-3] if field_name.endswith("__c") else ""
    if not dev or len(dev) > 40 or not _DEV_NAME.match(dev):
        raise RecordError(
            "FIELD_INTEGRITY_EXCEPTION",
            f"The field name {field_name} is invalid: API names end in __c, begin with "
            "a letter, have at most 40 characters, and use only letters, digits and "
            "single underscores.", ["FullName"])
    meta = rec.get("Metadata")
    if not isinstance(meta, dict):
        raise RecordError("REQUIRED_FIELD_MISSING", "Required fields are missing: [Metadata]",
                          ["Metadata"])
    _check_metadata(meta)
    rec.update(DeveloperName=dev, TableEnumOrId=obj.name, FullName=f"{obj.name}.{dev}__c",
               ManageableState="unmanaged", Description=meta.get("description"),
               InlineHelpText=meta.get("inlineHelpText"),
               Length=meta.get("length"), Precision=meta.get("precision"),
               Scale=meta.get("scale"))
    if old is None:
        clash = _duplicate(org, "CustomField", rec, pending, ("TableEnumOrId", "DeveloperName"))
        if clash:
            raise RecordError("DUPLICATE_DEVELOPER_NAME",
                              f"There is already a field named {dev} on {obj.name}.", ["FullName"])
    elif str(old.get("FullName")).lower() != rec["FullName"].lower():
        raise RecordError("FIELD_INTEGRITY_EXCEPTION", "FullName cannot be changed", ["FullName"])


def _check_metadata(meta: dict[str, object]) -> None:
    mtype = meta.get("type")
    if mtype not in METADATA_TYPES:
        raise RecordError("FIELD_INTEGRITY_EXCEPTION", f"Invalid field type: {mtype}",
                          ["Metadata"])
    if not meta.get("label") or len(str(meta["label"])) > 40:
        raise RecordError("REQUIRED_FIELD_MISSING", "Required fields are missing: [Label]",
                          ["Metadata"])
    length = meta.get("length")
    if mtype == "Text" and not (isinstance(length, int) and 1 <= length <= 255):
        raise RecordError("FIELD_INTEGRITY_EXCEPTION", "Length: value must be between 1 and 255",
                          ["Metadata"])
    if mtype == "LongTextArea" and not (
            isinstance(length, int) and 256 <= length <= 131072 and meta.get("visibleLines")):
        raise RecordError("FIELD_INTEGRITY_EXCEPTION",
                          "Length must be between 256 and 131072 and visibleLines is required",
                          ["Metadata"])
    if mtype in ("Number", "Currency", "Percent"):
        precision, scale = meta.get("precision"), meta.get("scale", 0)
        if not (isinstance(precision, int) and 1 <= precision <= 18) or not (
                isinstance(scale, int) and 0 <= scale <= precision):
            raise RecordError(
                "FIELD_INTEGRITY_EXCEPTION",
                "Precision must be between 1 and 18 and scale between 0 and precision",
                ["Metadata"])
    if mtype == "Checkbox" and meta.get("defaultValue") is None:
        raise RecordError("REQUIRED_FIELD_MISSING", "Required fields are missing: [DefaultValue]",
                          ["Metadata"])
