"""describeGlobal and describe bodies, field-level-security aware."""

from __future__ import annotations

import json
import threading

from ilyd.devorg.org import OrgState
from ilyd.devorg.schema import FieldDef, ObjectDef
from ilyd.devorg.security import Access

_SOAP_TYPES = {
    "id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "int": "xsd:int",
    "double": "xsd:double", "currency": "xsd:double", "percent": "xsd:double",
    "date": "xsd:date", "datetime": "xsd:dateTime", "complexvalue": "urn:JsonNode",
}


def object_urls(obj: ObjectDef, version: str, tooling: bool = False) -> dict[str, str]:
    """The `urls` map of an sObject."""
    base = f"/services/data/v{version}/{'tooling/' if tooling else ''}sobjects/{obj.name}"
    return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}


def object_summary(obj: ObjectDef, access: Access, version: str,
                   tooling: bool = False) -> dict[str, object]:
    """One entry of describeGlobal (also the head of a full describe)."""
    return {
        "activateable": False, "associateEntityType": None, "associateParentEntity": None,
        "createable": obj.createable and access.can(obj, "Create"), "custom": False,
        "customSetting": False, "deepCloneable": False,
        "deletable": obj.deletable and access.can(obj, "Delete"),
        "deprecatedAndHidden": False, "feedEnabled": False, "hasSubtypes": False,
        "isInterface": False, "isSubtype": False, "keyPrefix": obj.key_prefix,
        "label": obj.label, "labelPlural": obj.label_plural, "layoutable": not obj.setup,
        "mergeable": obj.name in ("Account", "Lead"), "mruEnabled": not obj.setup,
        "name": obj.name, "queryable": True, "replicateable": True, "retrieveable": True,
        "searchable": not obj.setup, "triggerable": not obj.setup, "undeletable":
            obj.deletable and access.can(obj, "Delete"),
        "updateable": obj.updateable and access.can(obj, "Edit"),
        "urls": object_urls(obj, version, tooling),
    }


def visible_objects(org: OrgState, access: Access) -> list[ObjectDef]:
    """Objects the user can see (PushTopic only while Streaming API is on)."""
    out = []
    for name in org.object_names():
        obj = org.object_def(name)
        if obj is None or not access.can(obj, "Read"):
            continue
        if name == "PushTopic" and not org.settings.streaming_enabled:
            continue
        out.append(obj)
    return out


def describe_global(org: OrgState, access: Access, version: str) -> dict[str, object]:
    """GET /sobjects."""
    return {"encoding": "UTF-8", "maxBatchSize": 200,
            "sobjects": [object_summary(o, access, version) for o in visible_objects(org, access)]}


def field_json(obj: ObjectDef, f: FieldDef, access: Access) -> dict[str, object]:
    """One field of a describe; createable/updateable reflect FLS edit."""
    editable = access.field_editable(obj, f) and access.can(obj, "Edit")
    string_like = f.type in ("string", "textarea", "url", "email", "phone", "picklist",
                             "id", "reference")
    return {
        "aggregatable": f.type not in ("textarea", "complexvalue"), "autoNumber": False,
        "byteLength": f.length * 3 if string_like else 0, "calculated": False,
        "calculatedFormula": None, "cascadeDelete": False,
        "caseSensitive": False, "compoundFieldName": None, "controllerName": None,
        "createable": f.createable and editable, "custom": f.custom,
        "defaultValue": f.default if f.type == "boolean" else None,
        "defaultValueFormula": None,
        "defaultedOnCreate": f.default is not None or f.name in (
            "Id", "OwnerId", "CreatedDate", "CreatedById", "LastModifiedDate",
            "LastModifiedById", "SystemModstamp", "IsDeleted"),
        "dependentPicklist": False, "deprecatedAndHidden": False,
        "digits": f.precision if f.type == "int" else 0,
        "displayLocationInDecimal": False, "encrypted": False, "externalId": f.external_id,
        "extraTypeInfo": "plaintextarea" if f.type == "textarea" else None,
        "filterable": f.filterable, "filteredLookupInfo": None, "groupable": f.sortable,
        "highScaleNumber": False, "htmlFormatted": False, "idLookup": f.name == "Id",
        "inlineHelpText": None, "label": f.display_label,
        "length": f.length if string_like else 0, "mask": None, "maskType": None,
        "name": f.name, "nameField": f.name == "Name", "namePointing": False,
        "nillable": f.nillable, "permissionable": f.custom or (f.nillable and f.updateable),
        "picklistValues": [{"active": True, "defaultValue": v == f.default, "label": v,
                            "validFor": None, "value": v} for v in f.picklist],
        "polymorphicForeignKey": False,
        "precision": f.precision if f.type in ("double", "currency", "percent") else 0,
        "queryByDistance": False, "referenceTargetField": None,
        "referenceTo": list(f.reference_to), "relationshipName": f.relationship_name,
        "relationshipOrder": None, "restrictedDelete": False,
        "restrictedPicklist": f.restricted_picklist or obj.name in ("FieldPermissions",
                                                                    "ObjectPermissions"),
        "scale": f.scale, "searchPrefilterable": False,
        "soapType": _SOAP_TYPES.get(f.type, "xsd:string"), "sortable": f.sortable,
        "type": f.type, "unique": f.unique, "updateable": f.updateable and editable,
        "writeRequiresMasterRead": False,
    }


def describe(org: OrgState, obj: ObjectDef, access: Access, version: str,
             tooling: bool = False) -> dict[str, object]:
    """GET /sobjects/X/describe: only the fields the user can read."""
    body = object_summary(obj, access, version, tooling)
    body.update(
        actionOverrides=[], childRelationships=[], compactLayoutable=not obj.setup,
        defaultImplementation=None, extendedBy=None, extendsInterfaces=None,
        fields=[field_json(obj, f, access) for f in obj.fields
                if access.field_readable(obj, f)],
        implementedBy=None, implementsInterfaces=None, listviewable=None,
        lookupLayoutable=None, namedLayoutInfos=[], networkScopeFieldName=None,
        recordTypeInfos=[], searchLayoutable=not obj.setup, sobjectDescribeOption="FULL",
        supportedScopes=[{"label": "All accounts", "name": "everything"}]
        if obj.name == "Account" else [],
    )
    return body


# Encoded describe bodies by (definition, access, version, tooling), the definition and
# access kept so their ids stay theirs: both are replaced, never changed, when fields or
# permissions change, so a kept body is what describe would build again. A client that
# describes before each write (hundreds of KiB of JSON for a big object) reads it here.
_BODIES: dict[tuple[int, int, str, bool], tuple[ObjectDef, Access, bytes]] = {}
_BODIES_MAX = 256
_bodies_lock = threading.Lock()


def describe_json(org: OrgState, obj: ObjectDef, access: Access, version: str,
                  tooling: bool = False) -> bytes:
    """`describe` encoded as devorg answers JSON (`web.json_response`'s encoding)."""
    key = (id(obj), id(access), version, tooling)
    kept = _BODIES.get(key)
    if kept is not None and kept[0] is obj and kept[1] is access:
        return kept[2]
    body = json.dumps(describe(org, obj, access, version, tooling), separators=(",", ":"),
                      ensure_ascii=False).encode()
    with _bodies_lock:
        if len(_BODIES) >= _BODIES_MAX:
            _BODIES.clear()
        _BODIES[key] = (obj, access, body)
    return body
