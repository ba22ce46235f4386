"""One emulated org: identity, settings, records, schema with custom fields, permissions.

`OrgState` is plain state guarded by one re-entrant lock; HTTP handlers, the admin API,
Bulk workers and the CometD endpoint all go through it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ilyd.devorg.changes import ChangeFeed
from ilyd.devorg.ids import IdFactory
from ilyd.devorg.limits import ApiUsage
from ilyd.devorg.schema import (
    STANDARD_OBJECTS,
    TOOLING_OBJECTS,
    FieldDef,
    ObjectDef,
    custom_field_def,
)
from ilyd.devorg.security import Access, compute_access
from ilyd.devorg.values import to_json

Record = dict[str, object]
PERMISSION_OBJECTS = frozenset(
    {"PermissionSet", "PermissionSetAssignment", "FieldPermissions", "ObjectPermissions",
     "CustomField"}
)


@dataclass(frozen=True)
class OrgIdentity:
    """Everything that names an org and its integration user; persisted with --data."""

    name: str
    org_id: str
    is_sandbox: bool
    pod: str
    user_id: str
    username: str
    password: str
    client_id: str
    client_secret: str
    profile_id: str
    profile_ps_id: str
    other_user_id: str  # a second, human-like user for writes "by someone else"


@dataclass
class OrgSettings:
    """Admin-adjustable behaviour of one org (see ADMIN.md)."""

    streaming_enabled: bool = True
    api_limit: int = 15000
    token_ttl: float = 7200.0
    refresh_token_rotation: bool = False
    token_request_seconds: float = 0.0
    pkce_required: bool = False
    jwt_preauthorized: bool = True
    client_credentials_enabled: bool = True
    password_flow_enabled: bool = True
    bulk_batch_limit: int = 15000
    query_batch_size: int = 2000

    def update(self, values: dict[str, object]) -> list[str]:
        """Apply known keys; returns the unknown ones."""
        known = {f.name: f for f in dataclasses.fields(self)}
        unknown = [k for k in values if k not in known]
        for key, value in values.items():
            if key in known:
                setattr(self, key, type(getattr(self, key))(value))
        return unknown


@dataclass
class Table:
    """Records of one sObject: live ones and the recycle bin."""

    live: dict[str, Record] = field(default_factory=dict)
    deleted: dict[str, Record] = field(default_factory=dict)


_HISTORY_TUPLE_MAX = 32


class RecordHistory:
    """Every record's change history (admin read-back), kept compact: one tuple of plain
    values per write, rendered as JSON-ready dicts only when read. A Bulk job adds an entry
    per record; dicts of strings would cost several times the memory and the GC's time."""

    def __init__(self) -> None:
        # id → tuple of entries (a list past _HISTORY_TUPLE_MAX); an entry is (timestamp,
        # user_id, change_type, changed_fields, value_names, values) or a rendered dict
        self._entries: dict[str, Any] = {}

    def append(self, record_id: str, entry: Any) -> None:
        """Append an entry: a ready dict, or the tuple (timestamp, user_id, change_type,
        changed_fields, value_names, values) — the name tuples shared between entries."""
        existing = self._entries.get(record_id)
        if existing is None:
            self._entries[record_id] = (entry,)
        elif type(existing) is tuple and len(existing) < _HISTORY_TUPLE_MAX:
            # a tuple of plain-value tuples is not tracked by the GC; a list would be
            self._entries[record_id] = (*existing, entry)
        elif type(existing) is tuple:
            self._entries[record_id] = [*existing, entry]
        else:
            existing.append(entry)

    def get(self, record_id: str, default: Any = None) -> Any:
        """A record's entries as `[{timestamp, user_id, change_type, changed_fields,
        values}]`, oldest first; `default` when it has none."""
        existing = self._entries.get(record_id)
        if existing is None:
            return default
        return [_render(e) for e in existing]

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)


def _render(entry: Any) -> dict[str, object]:
    if isinstance(entry, dict):
        return entry
    stamp, user_id, change_type, changed, names, values = entry
    return {"timestamp": to_json(stamp), "user_id": user_id, "change_type": change_type,
            "changed_fields": list(changed),
            "values": {k: to_json(v) for k, v in zip(names, values, strict=True)}}


def _by_lower_name(objects: Mapping[str, ObjectDef]) -> dict[str, ObjectDef]:
    """Definitions by lower-case name; the first of names equal but for case wins, as a
    scan in order would find it."""
    return {key.lower(): obj for key, obj in reversed(list(objects.items()))}


_TOOLING_LOWER = _by_lower_name(TOOLING_OBJECTS)


class OrgState:
    """The state of one org. Records are replaced, never mutated, once committed, so a
    snapshot of `table.live.values()` can be iterated without the lock."""

    def __init__(self, identity: OrgIdentity, settings: OrgSettings, id_start: int = 1) -> None:
        self.identity = identity
        self.settings = settings
        self.lock = threading.RLock()
        self.ids = IdFactory(identity.pod, id_start)
        self.tables: dict[str, Table] = {name: Table() for name in
                                         (*STANDARD_OBJECTS, *TOOLING_OBJECTS)}
        self.changes = ChangeFeed()
        self.usage = ApiUsage(lambda: self.settings.api_limit)
        self.history = RecordHistory()
        self.jwt_certificate: bytes | None = None  # PEM, registered through the admin API
        self._custom: dict[str, dict[str, FieldDef]] = {}
        self._objects: dict[str, ObjectDef] = dict(STANDARD_OBJECTS)
        self._objects_lower = _by_lower_name(self._objects)
        self._perm_version = 0
        self._access_cache: dict[str, tuple[int, Access]] = {}
        self.bulk_batches_used = 0
        # set by DevOrg when --data is given: called with (sobject, id, record, deleted) rows
        self.persistence: Callable[[list[tuple[str, str, Record, bool]]], None] | None = None
        self.extra: dict[str, object] = {}  # room for plug-ins (CometD) to keep per-org state

    # -- schema --------------------------------------------------------------------------
    def object_def(self, name: str, *, tooling: bool = False) -> ObjectDef | None:
        """The sObject definition (custom fields included), case-insensitive name."""
        catalogue = _TOOLING_LOWER if tooling else self._objects_lower
        return catalogue.get(name.lower())

    def object_names(self) -> list[str]:
        """Every sObject name served by the data API."""
        return list(self._objects)

    def rebuild_custom_fields(self) -> None:
        """Recompute object definitions from the CustomField table (after Tooling writes)."""
        custom: dict[str, dict[str, FieldDef]] = {}
        for rec in self.tables["CustomField"].live.values():
            fdef = custom_field_def(str(rec["DeveloperName"]) + "__c",
                                    rec.get("Metadata") or {})  # type: ignore[arg-type]
            custom.setdefault(str(rec["TableEnumOrId"]), {})[fdef.lower] = fdef
        self._custom = custom
        objects = dict(STANDARD_OBJECTS)
        for sobject, fields in custom.items():
            base = STANDARD_OBJECTS[sobject]
            objects[sobject] = dataclasses.replace(base, fields=(*base.fields, *fields.values()))
        self._objects_lower = _by_lower_name(objects)
        self._objects = objects
        self.permissions_changed()

    # -- permissions ---------------------------------------------------------------------
    def permissions_changed(self) -> None:
        """Invalidate cached Access after any permission-bearing write."""
        self._perm_version += 1

    @property
    def permissions_version(self) -> int:
        """Bumped by every permission-bearing write and custom-field rebuild: what was
        computed from permissions or object definitions at one version holds until the
        next."""
        return self._perm_version

    def access(self, user_id: str) -> Access:
        """Effective permissions of a user (cached until permissions change)."""
        cached = self._access_cache.get(user_id)
        if cached and cached[0] == self._perm_version:
            return cached[1]
        with self.lock:
            version = self._perm_version
            access = compute_access(
                user_id,
                list(self.tables["PermissionSetAssignment"].live.values()),
                self.tables["PermissionSet"].live,
                list(self.tables["ObjectPermissions"].live.values()),
                list(self.tables["FieldPermissions"].live.values()),
            )
        self._access_cache[user_id] = (version, access)
        return access

    def visible_fields(self, obj: ObjectDef, access: Access) -> list[FieldDef]:
        """The fields of `obj` the user can read, in definition order."""
        return [f for f in obj.fields if access.field_readable(obj, f)]

    # -- records -------------------------------------------------------------------------
    def get(self, sobject: str, record_id: str, *, deleted: bool = False) -> Record | None:
        """A live record (or, with deleted=True, a record in the recycle bin)."""
        table = self.tables.get(sobject)
        if table is None:
            return None
        rec = table.live.get(record_id)
        if rec is None and deleted:
            rec = table.deleted.get(record_id)
        return rec

    def find(self, record_id: str) -> tuple[str, Record, bool] | None:
        """Locate an id in any table: (sobject, record, is_deleted)."""
        for name, table in self.tables.items():
            if record_id in table.live:
                return name, table.live[record_id], False
            if record_id in table.deleted:
                return name, table.deleted[record_id], True
        return None

    def scan(self, sobject: str, *, all_rows: bool = False) -> Iterator[Record]:
        """Iterate a snapshot of the records (plus deleted ones with all_rows)."""
        table = self.tables[sobject]
        with self.lock:
            rows = list(table.live.values())
            if all_rows:
                rows.extend(table.deleted.values())
        return iter(rows)

    def record_history(self, record_id: str, entry: dict[str, object]) -> None:
        """Append one entry to a record's change history (admin read-back)."""
        self.history.append(record_id, entry)
