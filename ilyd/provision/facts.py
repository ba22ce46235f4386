"""What the org and its integration user look like, read from the API as it is.

`gather()` asks Salesforce (SOQL on PermissionSetAssignment / PermissionSet /
FieldPermissions / PushTopic, UserPermissionAccess, Tooling CustomField, describe,
/limits, Organization) and returns an `OrgFacts` snapshot; the checks, the plan and the
mode decision are pure functions of it. A read the user may not do is recorded as
unknown (None) with Salesforce's words, never guessed. The queries that need nothing from
another read go in one Composite call, each still answered (or refused) on its own.

What the user may do with objects and fields comes from describe, which Salesforce
filters by the user's own permissions and field-level security: it needs no setup
permission. The permission setup objects (PermissionSet, PermissionSetAssignment,
FieldPermissions, ObjectPermissions) and /limits need View Setup and Configuration;
without it ilyd still decides and runs, and only loses what those reads add.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from ilyd.errors import SalesforceError
from ilyd.provision.spec import (
    OBJECT_NEEDS,
    PERMISSION_SET_NAME,
    PUSH_TOPICS,
    SYSTEM_PERMISSIONS,
    VIEW_SETUP,
    wanted_fields,
)
from ilyd.salesforce.composite import MAX_COMPOSITE_QUERIES, query_many
from ilyd.salesforce.rest import RestClient
from ilyd.salesforce.soql import soql

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class FieldFacts:
    """One Ily field on one object: does it exist, can the integration user write it."""

    full_name: str  # "Account.Ily_Domain__c"
    exists: bool | None  # None: Tooling CustomField not readable
    readable: bool  # in the FLS-filtered describe
    writable: bool  # describe says updateable
    custom_field_id: str | None = None


@dataclass(frozen=True)
class OrgFacts:
    """A snapshot of everything the checks and the provisioning plan look at."""

    org_id: str
    user_id: str
    username: str | None
    org_name: str
    is_sandbox: bool
    system: frozenset[str]  # system permissions the user holds (union of its sets)
    objects: Mapping[str, frozenset[str]]  # "Account" -> {"Read", "Edit", …}
    assigned_sets: Mapping[str, str]  # permission set id -> name, assigned to the user
    streaming_enabled: bool | None  # the org's Streaming API setting (None: cannot tell)
    fields: Mapping[str, FieldFacts]  # by full name
    permission_set_id: str | None  # Ily_Connector
    permission_set_grants: Mapping[str, tuple[str, bool, bool]]  # field -> (row id, R, E)
    push_topics: Mapping[str, Mapping[str, Any]]  # name -> record
    push_topic_error: str | None
    profile_readers: tuple[str, ...]  # profiles whose users can read every Ily field
    api_usage: tuple[int, int] | None  # (used, max) today
    interactive_logins: int | None  # UI logins in the last 30 days (None: unknown)
    unknown: Mapping[str, str] = field(default_factory=dict)  # what could not be read, why
    last_interactive_login: str | None = None  # "2026-11-28T10:00:00.000+0000 from 1.2.3.4"
    # Objects selected for Change Data Capture (None: cannot be read, see `unknown`), and
    # the change events delivered today against the org's allocation (used, max).
    cdc_selected: frozenset[str] | None = None
    cdc_deliveries: tuple[int, int] | None = None

    def has(self, permission: str) -> bool:
        """Whether the user holds a system permission (PermissionSet field name)."""
        return permission in self.system

    def object_access(self, sobject: str) -> frozenset[str]:
        """Object permissions of the user on `sobject`; Modify All Data grants them all."""
        if self.has("PermissionsModifyAllData"):
            return frozenset({"Read", "Create", "Edit", "Delete"})
        return self.objects.get(sobject, frozenset())

    @property
    def can_create_fields(self) -> bool:
        """Tooling CustomField needs Customize Application plus Modify All Data or Modify
        Metadata Through Metadata API Functions."""
        return self.has("PermissionsCustomizeApplication") and (
            self.has("PermissionsModifyAllData") or self.has("PermissionsModifyMetadata"))

    @property
    def can_manage_permission_sets(self) -> bool:
        """Creating a permission set and its FieldPermissions."""
        return self.has("PermissionsModifyAllData") or self.has(
            "PermissionsManageProfilesPermissionsets")

    @property
    def can_assign_permission_sets(self) -> bool:
        """Assigning a permission set to a user."""
        return self.can_manage_permission_sets or self.has("PermissionsAssignPermissionSets")

    def can_manage_push_topics(self) -> bool:
        """Create/Read/Edit on PushTopic (the org's Streaming API must be on too)."""
        return {"Create", "Read", "Edit"} <= self.object_access("PushTopic")


def _records(rest: RestClient, query: str) -> list[dict[str, Any]]:
    return list(rest.query(query))


def _assignments_query(user_id: str) -> str:
    """The user's permission set assignments, with each set's system permissions."""
    select = ", ".join(["PermissionSetId", "PermissionSet.Name",
                        *(f"PermissionSet.{p}" for p in SYSTEM_PERMISSIONS)])
    # The column list is our own constant; the one value goes through soql().
    template = f"SELECT {select} FROM PermissionSetAssignment WHERE AssigneeId = {{}}"  # noqa: S608
    return soql(template, user_id)


class _Reads:
    """A snapshot's independent queries, answered together in one Composite call
    (`ilyd.salesforce.composite.query_many`: up to five queries for one API call)."""

    def __init__(self, rest: RestClient, queries: Mapping[str, str]) -> None:
        keys = list(queries)
        self._answers: dict[str, list[dict[str, Any]] | SalesforceError] = {}
        for start in range(0, len(keys), MAX_COMPOSITE_QUERIES):
            chunk = keys[start:start + MAX_COMPOSITE_QUERIES]
            self._answers.update(zip(chunk, query_many(rest, [queries[k] for k in chunk]),
                                     strict=True))

    def __contains__(self, key: str) -> bool:
        return key in self._answers

    def rows(self, key: str) -> list[dict[str, Any]]:
        """The rows of one query; raises the error Salesforce answered it with."""
        answer = self._answers[key]
        if isinstance(answer, SalesforceError):
            raise answer
        return answer


def _system_permissions(rest: RestClient, reads: _Reads, unknown: dict[str, str]
                        ) -> tuple[frozenset[str], dict[str, str] | None]:
    """The user's system permissions and its assigned permission sets (None: the sets
    are not readable, and the permissions come from UserPermissionAccess instead)."""
    perms = list(SYSTEM_PERMISSIONS)
    try:
        rows = reads.rows("assignments")
    except SalesforceError as exc:
        # PermissionSetAssignment needs View Setup and Configuration (or Assign Permission
        # Sets / Manage Users); UserPermissionAccess is the running user's own row.
        unknown["permission_sets"] = exc.message
        own = _records(rest, f"SELECT {', '.join(perms)} FROM UserPermissionAccess")  # noqa: S608
        return frozenset(p for p in perms if own and own[0].get(p)), None
    held: set[str] = set()
    sets: dict[str, str] = {}
    for row in rows:
        ps = row.get("PermissionSet") or {}
        sets[str(row["PermissionSetId"])] = str(ps.get("Name") or "")
        held.update(p for p in perms if ps.get(p))
    return frozenset(held), sets


def _listed_objects(rest: RestClient, unknown: dict[str, str]
                    ) -> dict[str, dict[str, Any]] | None:
    """describeGlobal by object name (None: not readable). Only objects the user can read
    are listed, each with what the user may do to it."""
    try:
        body = rest.describe_global()
    except SalesforceError as exc:
        unknown["describe_global"] = exc.message
        return None
    return {str(o.get("name")): o for o in body.get("sobjects") or ()}


def _object_access(listed: Mapping[str, Mapping[str, Any]] | None
                   ) -> dict[str, frozenset[str]]:
    """Object permissions of the user on the objects ilyd needs, as describe reports them."""
    out: dict[str, frozenset[str]] = {}
    for sobject in OBJECT_NEEDS:
        summary = (listed or {}).get(sobject)
        if summary is None:
            continue
        out[sobject] = frozenset(
            a for a, key in (("Read", "queryable"), ("Create", "createable"),
                             ("Edit", "updateable"), ("Delete", "deletable"))
            if summary.get(key))
    return out


def _push_topic_grant(rest: RestClient, set_ids: list[str]) -> frozenset[str] | None:
    """PushTopic permissions from ObjectPermissions: describe hides PushTopic both while
    the org's Streaming API is off and without Read, and only this tells them apart.
    None when it cannot be read (ObjectPermissions needs View Setup and Configuration)."""
    if not set_ids:
        return None
    try:
        rows = _records(rest, soql(
            "SELECT PermissionsRead, PermissionsCreate, PermissionsEdit, PermissionsDelete"
            " FROM ObjectPermissions WHERE ParentId IN {} AND SobjectType = 'PushTopic'",
            set_ids))
    except SalesforceError:
        return None
    return frozenset(a for row in rows for a in ("Read", "Create", "Edit", "Delete")
                     if row.get(f"Permissions{a}"))


def _existing_custom_fields(rest: RestClient, unknown: dict[str, str]) -> dict[str, str] | None:
    """Full name -> CustomField id of every Ily field in the org (Tooling; FLS-blind)."""
    try:
        rows = list(rest.query(
            "SELECT Id, DeveloperName, TableEnumOrId FROM CustomField"
            " WHERE DeveloperName LIKE 'Ily%'", tooling=True))
    except SalesforceError as exc:
        unknown["custom_fields"] = exc.message
        return None
    return {f"{r['TableEnumOrId']}.{r['DeveloperName']}__c".lower(): str(r["Id"]) for r in rows}


def _describe_fields(rest: RestClient, sobject: str, unknown: dict[str, str]
                     ) -> dict[str, dict[str, Any]]:
    try:
        body = rest.describe(sobject, refresh=True)
    except SalesforceError as exc:
        unknown[f"describe_{sobject}"] = exc.message
        return {}
    return {str(f["name"]).lower(): f for f in body.get("fields") or ()}


def _field_facts(rest: RestClient, objects: tuple[str, ...], unknown: dict[str, str]
                 ) -> dict[str, FieldFacts]:
    existing = _existing_custom_fields(rest, unknown)
    described = {sobject: _describe_fields(rest, sobject, unknown) for sobject in objects}
    out: dict[str, FieldFacts] = {}
    for sobject, ily in wanted_fields(objects):
        full = ily.full_name(sobject)
        desc = described[sobject].get(ily.api_name.lower())
        field_id = existing.get(full.lower()) if existing is not None else None
        exists = (field_id is not None or desc is not None) if existing is not None else (
            True if desc is not None else None)
        out[full] = FieldFacts(full, exists, desc is not None,
                               bool(desc and desc.get("updateable")), field_id)
    return out


def _permission_set(rest: RestClient, reads: _Reads, unknown: dict[str, str]
                    ) -> tuple[str | None, dict[str, tuple[str, bool, bool]]]:
    try:
        rows = reads.rows("permission_set")
        if not rows:
            return None, {}
        ps_id = str(rows[0]["Id"])
        grants = {
            str(r["Field"]).lower(): (str(r["Id"]), bool(r.get("PermissionsRead")),
                                      bool(r.get("PermissionsEdit")))
            for r in _records(rest, soql(
                "SELECT Id, Field, PermissionsRead, PermissionsEdit FROM FieldPermissions"
                " WHERE ParentId = {}", ps_id))
        }
    except SalesforceError as exc:
        unknown["permission_set"] = exc.message
        return None, {}
    return ps_id, grants


def _push_topics_query(objects: tuple[str, ...]) -> str | None:
    names = [PUSH_TOPICS[o].name for o in objects if o in PUSH_TOPICS]
    if not names:
        return None
    return soql(
        "SELECT Id, Name, Query, ApiVersion, IsActive, NotifyForFields,"
        " NotifyForOperationCreate, NotifyForOperationUpdate, NotifyForOperationUndelete,"
        " NotifyForOperationDelete FROM PushTopic WHERE Name IN {}", names)


def _push_topics(reads: _Reads) -> tuple[dict[str, dict[str, Any]], str | None]:
    if "push_topics" not in reads:  # no object of the run has a topic
        return {}, None
    try:
        rows = reads.rows("push_topics")
    except SalesforceError as exc:
        return {}, f"{exc.error_code or exc.status}: {exc.message}"
    return {str(r["Name"]): r for r in rows}, None


def _streaming_enabled(listed: Mapping[str, Any] | None,
                       objects: Mapping[str, frozenset[str]],
                       system: frozenset[str]) -> bool | None:
    """The org setting: PushTopic is listed only while the Streaming API is on."""
    if listed is None:
        return None
    if "PushTopic" in listed:
        return True
    readable = "Read" in objects.get("PushTopic", frozenset()) or bool(
        system & {"PermissionsModifyAllData", "PermissionsViewAllData"})
    # Without Read on PushTopic the object is hidden either way: we cannot tell.
    return False if readable else None


def _profile_readers(rest: RestClient, full_names: list[str], unknown: dict[str, str]
                     ) -> tuple[str, ...]:
    """Profiles whose owned permission set can read every Ily field that exists."""
    if not full_names:
        return ()
    try:
        rows = _records(rest, soql(
            "SELECT ParentId, Field FROM FieldPermissions WHERE Field IN {}"
            " AND PermissionsRead = true", full_names))
        by_parent: dict[str, set[str]] = {}
        for row in rows:
            by_parent.setdefault(str(row["ParentId"]), set()).add(str(row["Field"]).lower())
        complete = [p for p, f in by_parent.items() if f >= {n.lower() for n in full_names}]
        if not complete:
            return ()
        sets = _records(rest, soql(
            "SELECT Id, Profile.Name FROM PermissionSet WHERE IsOwnedByProfile = true"
            " AND Id IN {}", complete))
    except SalesforceError as exc:
        unknown["profile_readers"] = exc.message
        return ()
    return tuple(sorted(str((s.get("Profile") or {}).get("Name")) for s in sets))


INTERACTIVE_WINDOW_DAYS = 30
_UI_LOGINS = ("SELECT LoginTime, SourceIp FROM LoginHistory WHERE UserId = {}"
              " AND LoginType = 'Application' AND Status = 'Success' AND LoginTime ="
              " LAST_N_DAYS:30 ORDER BY LoginTime DESC LIMIT 200")


def _interactive_logins(rest: RestClient, user_id: str, unknown: dict[str, str]
                        ) -> tuple[int | None, str | None]:
    """Successful UI logins of the user in the last 30 days (LoginType 'Application' in
    LoginHistory; OAuth logins such as `ilyd connect` are 'Remote Access 2.0') and the
    latest one's time and address; (None, None) when LoginHistory is not readable."""
    try:
        rows = list(rest.query(soql(_UI_LOGINS, user_id)))
    except SalesforceError as exc:
        unknown["login_history"] = exc.message
        return None, None
    if not rows:
        return 0, None
    latest = rows[0]
    where = f" from {latest['SourceIp']}" if latest.get("SourceIp") else ""
    return len(rows), f"{latest.get('LoginTime')}{where}"


def _allowances(rest: RestClient, system: frozenset[str], unknown: dict[str, str]
                ) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """(used, max) of the daily API requests and of the delivered platform events, from
    /limits (None when it cannot be read)."""
    if VIEW_SETUP not in system:
        # /limits would refuse (and count) the call; every answer's header has the usage.
        unknown["limits"] = "/limits needs View Setup and Configuration"
        return None, None
    try:
        limits = rest.limits()
        daily = limits.get("DailyApiRequests") or {}
        usage = (int(daily["Max"]) - int(daily["Remaining"]), int(daily["Max"]))
        delivered = limits.get("DailyDeliveredPlatformEvents")
        deliveries = ((int(delivered["Max"]) - int(delivered["Remaining"]),
                       int(delivered["Max"])) if isinstance(delivered, dict) else None)
    except (SalesforceError, KeyError, ValueError) as exc:
        unknown["limits"] = getattr(exc, "message", str(exc))
        return None, None
    return usage, deliveries


def gather(rest: RestClient, objects: tuple[str, ...], *, before: OrgFacts | None = None,
           cdc_changed: bool = False) -> OrgFacts:
    """Read the org's state as the integration user (raises SalesforceError when even the
    basic reads fail, e.g. API_DISABLED_FOR_ORG or an expired grant).

    `before`: the snapshot this provisioning run read before its own changes. What those
    changes cannot touch is taken from it, not read again: the org's identity, the user's
    name and UI logins, what the user may do with objects and whether the org streams
    (a run grants fields only), the daily allowances (the API usage then comes from the
    latest answer's header), and the CDC selection unless `cdc_changed`."""
    token = rest.token
    user_id = token.user_id or ""
    queries = {"assignments": _assignments_query(user_id),
               "permission_set": soql("SELECT Id FROM PermissionSet WHERE Name = {}",
                                      PERMISSION_SET_NAME)}
    topics_query = _push_topics_query(objects)
    if topics_query is not None:
        queries["push_topics"] = topics_query
    if before is None:
        queries["org"] = "SELECT Id, Name, IsSandbox FROM Organization"
        queries["user"] = soql("SELECT Username FROM User WHERE Id = {}", user_id)
    reads = _Reads(rest, queries)
    if before is None:
        org_rows, users = reads.rows("org"), reads.rows("user")
        org = org_rows[0] if org_rows else {}
        username = str(users[0]["Username"]) if users else None
    else:
        org = {"Id": before.org_id, "Name": before.org_name, "IsSandbox": before.is_sandbox}
        username = before.username
    unknown: dict[str, str] = {}
    system, sets = _system_permissions(rest, reads, unknown)
    if before is not None:
        # A run grants fields only: what the user may do with objects, and whether the
        # org streams, are as they were.
        object_perms, streaming = dict(before.objects), before.streaming_enabled
        unknown.update({k: v for k, v in before.unknown.items() if k == "describe_global"})
    else:
        listed = _listed_objects(rest, unknown)
        object_perms = _object_access(listed)
        if listed is not None and "PushTopic" not in listed:
            pushtopic = _push_topic_grant(rest, list(sets or ()))
            if pushtopic:
                object_perms["PushTopic"] = pushtopic
        streaming = _streaming_enabled(listed, object_perms, system)
    fields = _field_facts(rest, objects, unknown)
    ps_id, grants = _permission_set(rest, reads, unknown)
    topics, topic_error = _push_topics(reads)
    existing = [f.full_name for f in fields.values() if f.exists]
    if before is not None:
        logins, last_login = before.interactive_logins, before.last_interactive_login
        unknown.update({k: v for k, v in before.unknown.items()
                        if k in ("login_history", "limits")})
        usage, deliveries = None, before.cdc_deliveries
    else:
        logins, last_login = _interactive_logins(rest, user_id, unknown)
        usage, deliveries = _allowances(rest, system, unknown)
    if usage is None:
        current = rest.api_usage
        usage = (current.used, current.max) if current is not None else None
    return OrgFacts(
        org_id=str(org.get("Id") or token.org_id or ""),
        user_id=user_id,
        username=username,
        org_name=str(org.get("Name") or ""),
        is_sandbox=bool(org.get("IsSandbox")),
        system=system,
        objects=object_perms,
        assigned_sets=sets or {},
        streaming_enabled=streaming,
        fields=fields,
        permission_set_id=ps_id,
        permission_set_grants=grants,
        push_topics=topics,
        push_topic_error=topic_error,
        profile_readers=_profile_readers(rest, existing, unknown),
        api_usage=usage,
        interactive_logins=logins,
        unknown=unknown,
        last_interactive_login=last_login,
        cdc_selected=(before.cdc_selected if before is not None and not cdc_changed
                      else _cdc_selected(rest, unknown)),
        cdc_deliveries=deliveries,
    )


def _cdc_selected(rest: RestClient, unknown: dict[str, str]) -> frozenset[str] | None:
    """The objects selected for Change Data Capture on the standard channel (reading
    PlatformEventChannelMember needs View Setup and Configuration)."""
    try:
        rows = rest.query("SELECT SelectedEntity FROM PlatformEventChannelMember"
                          " WHERE EventChannel = 'ChangeEvents'", tooling=True)
        return frozenset(str(r.get("SelectedEntity") or "").removesuffix("ChangeEvent")
                         for r in rows)
    except SalesforceError as exc:
        unknown["change_data_capture"] = exc.message
        return None


def facts_as_json(facts: OrgFacts) -> dict[str, Any]:
    """`facts` as JSON-ready values (the state database keeps them between starts)."""
    return {
        "org_id": facts.org_id, "user_id": facts.user_id, "username": facts.username,
        "org_name": facts.org_name, "is_sandbox": facts.is_sandbox,
        "system": sorted(facts.system),
        "objects": {k: sorted(v) for k, v in facts.objects.items()},
        "assigned_sets": dict(facts.assigned_sets),
        "streaming_enabled": facts.streaming_enabled,
        "fields": {k: [f.full_name, f.exists, f.readable, f.writable, f.custom_field_id]
                   for k, f in facts.fields.items()},
        "permission_set_id": facts.permission_set_id,
        "permission_set_grants": {k: list(v) for k, v in facts.permission_set_grants.items()},
        "push_topics": {k: dict(v) for k, v in facts.push_topics.items()},
        "push_topic_error": facts.push_topic_error,
        "profile_readers": list(facts.profile_readers),
        "api_usage": list(facts.api_usage) if facts.api_usage is not None else None,
        "interactive_logins": facts.interactive_logins,
        "unknown": dict(facts.unknown),
        "last_interactive_login": facts.last_interactive_login,
        "cdc_selected": sorted(facts.cdc_selected) if facts.cdc_selected is not None else None,
        "cdc_deliveries": (list(facts.cdc_deliveries) if facts.cdc_deliveries is not None
                           else None),
    }


def facts_from_json(data: Mapping[str, Any]) -> OrgFacts:
    """The `OrgFacts` that `facts_as_json` wrote (KeyError/TypeError/ValueError when the
    stored form is not one this version wrote)."""

    def pair(value: Any) -> tuple[int, int] | None:
        return (int(value[0]), int(value[1])) if value is not None else None

    cdc = data["cdc_selected"]
    return OrgFacts(
        org_id=str(data["org_id"]), user_id=str(data["user_id"]), username=data["username"],
        org_name=str(data["org_name"]), is_sandbox=bool(data["is_sandbox"]),
        system=frozenset(data["system"]),
        objects={k: frozenset(v) for k, v in data["objects"].items()},
        assigned_sets=dict(data["assigned_sets"]),
        streaming_enabled=data["streaming_enabled"],
        fields={k: FieldFacts(str(v[0]), v[1], bool(v[2]), bool(v[3]), v[4])
                for k, v in data["fields"].items()},
        permission_set_id=data["permission_set_id"],
        permission_set_grants={k: (str(v[0]), bool(v[1]), bool(v[2]))
                               for k, v in data["permission_set_grants"].items()},
        push_topics={k: dict(v) for k, v in data["push_topics"].items()},
        push_topic_error=data["push_topic_error"],
        profile_readers=tuple(data["profile_readers"]),
        api_usage=pair(data["api_usage"]),
        interactive_logins=data["interactive_logins"],
        unknown=dict(data["unknown"]),
        last_interactive_login=data["last_interactive_login"],
        cdc_selected=frozenset(cdc) if cdc is not None else None,
        cdc_deliveries=pair(data["cdc_deliveries"]),
    )
