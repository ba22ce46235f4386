"""The sObject catalogue: standard objects with realistic fields, plus custom fields.

Field definitions follow describe's vocabulary (lower-case types, createable/updateable,
nillable, length …). Custom fields are added per org at run time by the Tooling API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ilyd.devorg.ids import KEY_PREFIXES


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One field of an sObject, in describe terms."""

    name: str
    type: str
    label: str = ""
    length: int = 0
    precision: int = 0
    scale: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    required: bool = False  # required on create (not nillable and not defaulted)
    custom: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    picklist: tuple[str, ...] = ()
    default: object = None
    filterable: bool = True
    sortable: bool = True
    external_id: bool = False
    unique: bool = False
    # A restricted picklist refuses values outside `picklist`
    # (INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST) and says so in describe.
    restricted_picklist: bool = False

    @property
    def display_label(self) -> str:
        """The label describe shows and error messages start with ("Billing City")."""
        if self.label:
            return self.label
        base = self.name[:-3] if self.name.endswith("__c") else self.name
        out = []
        for i, ch in enumerate(base.replace("_", " ")):
            if ch.isupper() and i and base[i - 1].islower():
                out.append(" ")
            out.append(ch)
        return "".join(out).replace(" Id", " ID")

    @property
    def lower(self) -> str:
        """The case-insensitive lookup key."""
        return self.name.lower()


@dataclass(frozen=True)
class ObjectDef:
    """One sObject type: its name, key prefix and standard fields."""

    name: str
    label: str
    label_plural: str
    key_prefix: str
    fields: tuple[FieldDef, ...]
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    custom_fields_allowed: bool = False
    # setup objects answer to "View Setup and Configuration", not object permissions
    setup: bool = False
    # False for read-only log objects (LoginHistory): their supported calls have no
    # create/update/delete, so a write answers INVALID_TYPE_FOR_OPERATION for everyone
    supports_dml: bool = True
    field_map: Mapping[str, FieldDef] = field(init=False, repr=False)
    # A new record's starting values ({name: default} in field order) and the names of the
    # fields required on create: derived once per definition, not on every create.
    defaults: Mapping[str, object] = field(init=False, repr=False, compare=False)
    required_names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "field_map", {f.lower: f for f in self.fields})
        object.__setattr__(self, "defaults", {f.name: f.default for f in self.fields})
        object.__setattr__(self, "required_names",
                           tuple(f.name for f in self.fields if f.required))


def _ro(name: str, ftype: str, **kw: object) -> FieldDef:
    return FieldDef(name, ftype, createable=False, updateable=False, **kw)  # type: ignore[arg-type]


def _ref(name: str, target: str, rel: str | None, **kw: object) -> FieldDef:
    return FieldDef(name, "reference", length=18, reference_to=(target,),
                    relationship_name=rel, **kw)  # type: ignore[arg-type]


def _s(name: str, length: int, **kw: object) -> FieldDef:
    return FieldDef(name, "string", length=length, **kw)  # type: ignore[arg-type]


def _b(name: str, default: bool = False, **kw: object) -> FieldDef:
    return FieldDef(name, "boolean", nillable=False, default=default, **kw)  # type: ignore[arg-type]


_AUDIT: tuple[FieldDef, ...] = (
    _ro("IsDeleted", "boolean", nillable=False),
    _ro("CreatedDate", "datetime", nillable=False),
    FieldDef("CreatedById", "reference", length=18, reference_to=("User",),
             relationship_name="CreatedBy", createable=False, updateable=False, nillable=False),
    _ro("LastModifiedDate", "datetime", nillable=False),
    FieldDef("LastModifiedById", "reference", length=18, reference_to=("User",),
             relationship_name="LastModifiedBy", createable=False, updateable=False,
             nillable=False),
    _ro("SystemModstamp", "datetime", nillable=False),
)
_ID = _ro("Id", "id", length=18, nillable=False)
_OWNER = _ref("OwnerId", "User", "Owner", nillable=False)

_INDUSTRIES = ("Agriculture", "Banking", "Communications", "Consulting", "Education",
               "Electronics", "Energy", "Finance", "Healthcare", "Insurance", "Media",
               "Retail", "Technology", "Telecommunications", "Transportation", "Other")

# Permission flags carried by Profile, PermissionSet and UserPermissionAccess.
SYSTEM_PERMISSIONS: tuple[str, ...] = (
    "PermissionsApiEnabled", "PermissionsModifyAllData", "PermissionsViewAllData",
    "PermissionsCustomizeApplication", "PermissionsModifyMetadata", "PermissionsViewSetup",
    "PermissionsManageUsers", "PermissionsAssignPermissionSets",
    "PermissionsManageProfilesPermissionsets", "PermissionsStreamingApiEnabled",
)
OBJECT_PERMISSIONS: tuple[str, ...] = (
    "PermissionsRead", "PermissionsCreate", "PermissionsEdit", "PermissionsDelete",
    "PermissionsViewAllRecords", "PermissionsModifyAllRecords",
)


# LoginHistory.LoginType values: "Application" is a UI (browser) login, "Remote Access 2.0"
# an OAuth 2.0 login through a connected app, "Other Apex API" a SOAP/API login.
LOGIN_TYPES: tuple[str, ...] = (
    "Application", "Chatter Communities External User", "Other Apex API", "Partner Product",
    "Remote Access 2.0", "Remote Access Client", "SAML Chatter Communities External User SSO",
    "SAML Idp Initiated SSO", "SAML Sfdc Initiated SSO", "SYNC",
)


def _obj(name: str, label: str, plural: str, fields: tuple[FieldDef, ...], *,
         audit: bool = True, **kw: object) -> ObjectDef:
    all_fields = (_ID, *fields, *(_AUDIT if audit else ()))
    return ObjectDef(name, label, plural, KEY_PREFIXES[name], all_fields, **kw)  # type: ignore[arg-type]


STANDARD_OBJECTS: dict[str, ObjectDef] = {o.name: o for o in (
    _obj("Organization", "Organization", "Organizations", (
        _ro("Name", "string", length=80, nillable=False),
        _ro("IsSandbox", "boolean", nillable=False),
        _ro("OrganizationType", "picklist", length=40),
        _ro("InstanceName", "string", length=5),
        _ro("NamespacePrefix", "string", length=15),
        _ro("TrialExpirationDate", "datetime"),
        _ro("LanguageLocaleKey", "picklist", length=40),
        _ro("TimeZoneSidKey", "picklist", length=40),
        _ro("DefaultLocaleSidKey", "picklist", length=40),
    ), createable=False, updateable=False, deletable=False, setup=True),
    _obj("Profile", "Profile", "Profiles", (
        _ro("Name", "string", length=255, nillable=False),
        _ro("UserType", "picklist", length=40),
        _ro("Description", "string", length=255),
        *(_ro(p, "boolean", nillable=False) for p in SYSTEM_PERMISSIONS),
    ), createable=False, updateable=False, deletable=False, setup=True),
    _obj("User", "User", "Users", (
        _ro("Username", "string", length=80, nillable=False, unique=True),
        _s("FirstName", 40), _s("LastName", 80, nillable=False, required=True),
        _ro("Name", "string", length=121, nillable=False),
        FieldDef("Email", "email", length=128, nillable=False),
        _s("Alias", 8), _ref("ProfileId", "Profile", "Profile", nillable=False),
        _b("IsActive", True), _ro("UserType", "picklist", length=40),
        FieldDef("TimeZoneSidKey", "picklist", length=40, nillable=False),
        FieldDef("LanguageLocaleKey", "picklist", length=40, nillable=False),
        FieldDef("LocaleSidKey", "picklist", length=40, nillable=False),
    ), createable=False, deletable=False, setup=True),
    _obj("Account", "Account", "Accounts", (
        _s("Name", 255, nillable=False, required=True),
        FieldDef("Type", "picklist", length=255,
                 picklist=("Prospect", "Customer - Direct", "Customer - Channel",
                           "Channel Partner / Reseller", "Installation Partner",
                           "Technology Partner", "Other")),
        _ref("ParentId", "Account", "Parent"),
        _s("BillingStreet", 255), _s("BillingCity", 40), _s("BillingState", 80),
        _s("BillingPostalCode", 20), _s("BillingCountry", 80),
        FieldDef("Phone", "phone", length=40), FieldDef("Fax", "phone", length=40),
        FieldDef("Website", "url", length=255),
        FieldDef("Industry", "picklist", length=255, picklist=_INDUSTRIES),
        FieldDef("AnnualRevenue", "currency", precision=18, scale=0),
        FieldDef("NumberOfEmployees", "int", precision=8),
        FieldDef("Description", "textarea", length=32000, filterable=False, sortable=False),
        FieldDef("AccountSource", "picklist", length=255,
                 picklist=("Web", "Phone Inquiry", "Partner Referral", "Purchased List",
                           "Other")),
        _OWNER,
    ), custom_fields_allowed=True),
    _obj("Lead", "Lead", "Leads", (
        _s("FirstName", 40), _s("LastName", 80, nillable=False, required=True),
        _ro("Name", "string", length=121, nillable=False),
        _s("Company", 255, nillable=False, required=True), _s("Title", 128),
        FieldDef("Email", "email", length=80), FieldDef("Phone", "phone", length=40),
        FieldDef("Website", "url", length=255),
        FieldDef("Status", "picklist", length=255, nillable=False,
                 default="Open - Not Contacted",
                 picklist=("Open - Not Contacted", "Working - Contacted",
                           "Closed - Converted", "Closed - Not Converted")),
        FieldDef("Industry", "picklist", length=255, picklist=_INDUSTRIES),
        FieldDef("AnnualRevenue", "currency", precision=18, scale=0),
        FieldDef("NumberOfEmployees", "int", precision=8),
        _s("Street", 255), _s("City", 40), _s("State", 80), _s("PostalCode", 20),
        _s("Country", 80),
        FieldDef("LeadSource", "picklist", length=255,
                 picklist=("Web", "Phone Inquiry", "Partner Referral", "Purchased List",
                           "Other")),
        FieldDef("Description", "textarea", length=32000, filterable=False, sortable=False),
        # Set by conversion (convert.py, the admin API), never by an update; a lead can
        # also be created converted.
        FieldDef("IsConverted", "boolean", nillable=False, default=False, updateable=False),
        FieldDef("ConvertedAccountId", "reference", length=18, reference_to=("Account",),
                 relationship_name="ConvertedAccount", updateable=False),
        FieldDef("ConvertedDate", "date", updateable=False),
        _OWNER,
    ), custom_fields_allowed=True),
    _obj("PermissionSet", "Permission Set", "Permission Sets", (
        _s("Name", 80, nillable=False, required=True, unique=True),
        _s("Label", 80, nillable=False, required=True),
        _s("Description", 255),
        _ro("IsOwnedByProfile", "boolean", nillable=False),
        _ro("IsCustom", "boolean", nillable=False),
        FieldDef("ProfileId", "reference", length=18, reference_to=("Profile",),
                 relationship_name="Profile", createable=False, updateable=False),
        _ro("Type", "picklist", length=40),
        *(_b(p) for p in SYSTEM_PERMISSIONS),
    ), setup=True),
    _obj("PermissionSetAssignment", "Permission Set Assignment",
         "Permission Set Assignments", (
             FieldDef("AssigneeId", "reference", length=18, reference_to=("User",),
                      relationship_name="Assignee", nillable=False, required=True,
                      updateable=False),
             FieldDef("PermissionSetId", "reference", length=18,
                      reference_to=("PermissionSet",), relationship_name="PermissionSet",
                      nillable=False, required=True, updateable=False),
             _b("IsActive", True, createable=False, updateable=False),
         ), updateable=False, setup=True),
    _obj("FieldPermissions", "Field Permissions", "Field Permissions", (
        FieldDef("ParentId", "reference", length=18, reference_to=("PermissionSet",),
                 relationship_name="Parent", nillable=False, required=True, updateable=False),
        FieldDef("SobjectType", "picklist", length=40, nillable=False, required=True,
                 updateable=False),
        FieldDef("Field", "picklist", length=120, nillable=False, required=True,
                 updateable=False),
        _b("PermissionsRead"), _b("PermissionsEdit"),
    ), setup=True),
    _obj("ObjectPermissions", "Object Permissions", "Object Permissions", (
        FieldDef("ParentId", "reference", length=18, reference_to=("PermissionSet",),
                 relationship_name="Parent", nillable=False, required=True, updateable=False),
        FieldDef("SobjectType", "picklist", length=40, nillable=False, required=True,
                 updateable=False),
        *(_b(p) for p in OBJECT_PERMISSIONS),
        _b("PermissionsViewAllFields"),
    ), setup=True),
    _obj("PushTopic", "Push Topic", "Push Topics", (
        _s("Name", 25, nillable=False, required=True, unique=True),
        FieldDef("Query", "string", length=1300, nillable=False, required=True,
                 filterable=False, sortable=False),
        FieldDef("ApiVersion", "double", precision=18, scale=1, nillable=False,
                 required=True),
        _b("IsActive", True),
        # A restricted picklist: https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_pushtopic.htm
        FieldDef("NotifyForFields", "picklist", length=40, nillable=False,
                 default="Referenced", picklist=("All", "Referenced", "Select", "Where"),
                 restricted_picklist=True),
        _ro("NotifyForOperations", "picklist", length=40, nillable=False),
        _b("NotifyForOperationCreate", True), _b("NotifyForOperationUpdate", True),
        _b("NotifyForOperationDelete", True), _b("NotifyForOperationUndelete", True),
        _s("Description", 400),
    ), setup=False),
    # Salesforce records one row per login attempt; no API call may create or change one.
    _obj("LoginHistory", "Login History", "Login History", (
        FieldDef("UserId", "reference", length=18, reference_to=("User",), createable=False,
                 updateable=False),
        _ro("LoginTime", "datetime", nillable=False),
        _ro("LoginType", "picklist", length=40, picklist=LOGIN_TYPES),
        _ro("LoginUrl", "string", length=255),
        _ro("SourceIp", "string", length=39),
        _ro("Status", "string", length=128),
        _ro("Application", "string", length=64),
        _ro("Browser", "string", length=64),
        _ro("Platform", "string", length=64),
        _ro("ApiType", "string", length=64),
        _ro("ApiVersion", "string", length=32),
    ), audit=False, createable=False, updateable=False, deletable=False, setup=True,
        supports_dml=False),
    # The running user's effective system permissions, one row, readable by every user
    # (it is how a user without View Setup and Configuration learns what it holds).
    # https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_userpermissionaccess.htm
    _obj("UserPermissionAccess", "User Permission Access", "User Permission Access", (
        *(_ro(p, "boolean", nillable=False) for p in SYSTEM_PERMISSIONS),
    ), audit=False, createable=False, updateable=False, deletable=False, setup=True,
        supports_dml=False),
)}

# Tooling objects live in their own namespace (/tooling/…).
TOOLING_OBJECTS: dict[str, ObjectDef] = {o.name: o for o in (
    _obj("CustomField", "Custom Field", "Custom Fields", (
        _ro("DeveloperName", "string", length=40, nillable=False),
        _ro("TableEnumOrId", "string", length=40, nillable=False),
        FieldDef("FullName", "string", length=255, nillable=False, required=True,
                 updateable=False, filterable=False),
        FieldDef("Metadata", "complexvalue", filterable=False, sortable=False),
        _ro("NamespacePrefix", "string", length=15),
        _ro("ManageableState", "picklist", length=40),
        _ro("Description", "string", length=1000),
        _ro("InlineHelpText", "string", length=510),
        _ro("Length", "int"), _ro("Precision", "int"), _ro("Scale", "int"),
    ), setup=True),
    # An entity selected for Change Data Capture (rules: ilyd/devorg/cometd_cdc.py).
    # https://developer.salesforce.com/docs/platform/api-tooling/references/tooling-objects/tooling-platformeventchannelmember.html
    _obj("PlatformEventChannelMember", "Platform Event Channel Member",
         "Platform Event Channel Members", (
             _s("DeveloperName", 40, nillable=False),
             FieldDef("EventChannel", "string", length=40, nillable=False, updateable=False),
             FieldDef("SelectedEntity", "string", length=40, nillable=False,
                      updateable=False),
             FieldDef("FullName", "string", length=255, updateable=False, filterable=False),
             FieldDef("Metadata", "complexvalue", filterable=False, sortable=False),
         ), setup=True),
)}

# Metadata (Tooling/Metadata API) field type → describe type, with the length rule.
METADATA_TYPES: dict[str, str] = {
    "Text": "string", "TextArea": "textarea", "LongTextArea": "textarea", "Url": "url",
    "Email": "email", "Phone": "phone", "Checkbox": "boolean", "Number": "double",
    "Currency": "currency", "Percent": "percent", "Date": "date", "DateTime": "datetime",
    "Picklist": "picklist",
}


def custom_field_def(name: str, metadata: Mapping[str, object]) -> FieldDef:
    """Describe-level definition of a custom field from its Tooling `Metadata`."""
    mtype = str(metadata.get("type"))
    ftype = METADATA_TYPES[mtype]
    length = int(metadata.get("length") or 0)  # type: ignore[call-overload]
    if mtype == "Url":
        length = 255
    elif mtype == "Email":
        length = 80
    elif mtype == "Phone":
        length = 40
    elif mtype in {"TextArea", "Picklist"}:
        length = 255
    values: tuple[str, ...] = ()
    if mtype == "Picklist":
        vs = metadata.get("valueSet") or {}
        definition = (vs.get("valueSetDefinition") or {}) if isinstance(vs, dict) else {}
        values = tuple(str(v.get("fullName")) for v in definition.get("value") or ())
    checkbox = mtype == "Checkbox"
    default = (str(metadata.get("defaultValue")).lower() == "true") if checkbox else None
    return FieldDef(
        name, ftype, label=str(metadata.get("label") or name), length=length,
        precision=int(metadata.get("precision") or 0),  # type: ignore[call-overload]
        scale=int(metadata.get("scale") or 0),  # type: ignore[call-overload]
        nillable=not checkbox, custom=True, picklist=values, default=default,
        filterable=mtype != "LongTextArea", sortable=mtype != "LongTextArea",
        external_id=bool(metadata.get("externalId")), unique=bool(metadata.get("unique")),
    )
