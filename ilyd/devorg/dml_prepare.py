"""Validating one record write against the org, before anything is applied.

`Writer.prepare` turns a WriteOp into a `_Prepared` record — types coerced, field-level
security, required fields, references and upsert targets checked, write rules run — or
raises RecordError with Salesforce's code and wording. `dml.save` applies what it prepares.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ilyd.devorg import rules
from ilyd.devorg.dml_ops import RecordError, WriteOp
from ilyd.devorg.ids import PREFIX_TO_SOBJECT, sobject_of, to18
from ilyd.devorg.org import OrgState, Record
from ilyd.devorg.schema import FieldDef, ObjectDef
from ilyd.devorg.security import Access
from ilyd.devorg.values import FieldValueError, coerce, parsed_cache

# Objects whose write rules (rules.before_write) may set fields beyond the written ones: their
# changed fields come from comparing every field. Lead and User only recompute Name.
_RULE_KEYS: dict[str, tuple[str, ...]] = {"Lead": ("Name",), "User": ("Name",)}
_FULL_DIFF = frozenset({"PermissionSet", "PermissionSetAssignment", "FieldPermissions",
                        "ObjectPermissions", "PushTopic", "CustomField"})
# Field types stored as the text given (after a length check): no conversion needed.
_CONVERTED_TYPES = frozenset({"complexvalue", "boolean", "int", "double", "currency", "percent",
                              "date", "datetime", "reference"})
# How Writer._values takes one written key (see Writer._plan).
_SKIP, _REFUSE, _TEXT, _CONVERT = "skip", "refuse", "text", "convert"
# (how, field name, field, error args, text length limit, parsed-text cache of its type)
_Column = tuple[str, str, FieldDef | None, tuple[str, ...], int, dict[str, object] | None]
_NO_LIMIT = 1 << 62


@dataclass(slots=True)
class _Prepared:
    """One validated write, ready for `dml._commit` to apply."""

    sobject: str
    record_id: str
    new: Record | None  # None for delete
    old: Record | None
    change_type: str
    changed: frozenset[str]
    created: bool = False


def no_such_column(name: str, sobject: str) -> RecordError:
    """INVALID_FIELD for an unknown or FLS-hidden field in a write. Salesforce names the
    column in the message only: the error has no `fields` list."""
    return RecordError("INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}",
                       [])


def _not_writable(f: FieldDef) -> RecordError:
    return RecordError(
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        f"Unable to create/update fields: {f.name}. Please check the security settings of "
        "this field and verify that it is read/write for your profile or permission set.",
        [f.name],
    )


def _insufficient() -> RecordError:
    return RecordError("INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id")


def _unsupported(obj: ObjectDef, call: str) -> RecordError:
    """A write to an object whose supported calls lack it (LoginHistory): Salesforce's
    answer is the same for every user, whatever their permissions."""
    return RecordError("INVALID_TYPE_FOR_OPERATION",
                       f"entity type {obj.name} does not support {call}")


class Writer:
    """Applies WriteOps for one user of one org."""

    def __init__(self, org: OrgState, user_id: str, *, tooling: bool = False,
                 lock_share: float = 0.0) -> None:
        self.org = org
        self.user_id = user_id
        self.tooling = tooling
        self.lock_share = lock_share
        self.access: Access = org.access(user_id)
        # records created earlier in the same request, for references and upserts
        self.pending: dict[str, tuple[str, Record]] = {}
        # Per-request lookups: a Bulk batch writes the same object and columns 10,000 times.
        self._objects: dict[str, ObjectDef | None] = {}
        self._plans: dict[tuple[str, bool, tuple[str, ...]], list[_Column]] = {}
        self._rights: dict[tuple[str, str], bool] = {}
        self._changed: dict[tuple[str, ...], frozenset[str]] = {}

    def _object(self, name: str | None) -> ObjectDef:
        key = name or ""
        try:
            obj = self._objects[key]
        except KeyError:
            obj = self._objects[key] = self.org.object_def(key, tooling=self.tooling)
        if obj is None:
            raise RecordError("INVALID_TYPE", f"sObject type '{name}' is not supported.")
        return obj

    def _can(self, obj: ObjectDef, action: str) -> bool:
        key = (obj.name, action)
        allowed = self._rights.get(key)
        if allowed is None:
            allowed = self._rights[key] = self.access.can(obj, action)
        return allowed

    def _column(self, obj: ObjectDef, key: str, creating: bool
                ) -> tuple[FieldDef | None, tuple[str, ...]]:
        """The writable field behind a written key, or the error (args) writing it gives."""
        f = obj.field_map.get(key.lower())
        if f is None or not self.access.field_readable(obj, f):
            e = no_such_column(key, obj.name)
            return None, (e.status_code, e.message, *e.fields)
        allowed = f.createable if creating else f.updateable
        if not allowed or not self.access.field_editable(obj, f):
            e = _not_writable(f)
            return None, (e.status_code, e.message, *e.fields)
        return f, ()

    def _resolve(self, op: WriteOp) -> tuple[str, Record, bool]:
        raw = op.record_id
        if raw and len(raw) == 18:
            # An exact, canonical id of a pending or live record needs no checksum check.
            found = self.pending.get(raw)
            if found is not None:
                return found[0], found[1], False
            prefix = raw[:3]
            table = self.org.tables.get(PREFIX_TO_SOBJECT.get(prefix, ""))
            rec = table.live.get(raw) if table is not None else None
            if rec is not None:
                return PREFIX_TO_SOBJECT[prefix], rec, False
        rid = to18(raw or "") if raw else None
        if rid is None:
            label = f"{op.sobject} ID" if op.sobject else "Id"
            raise RecordError("MALFORMED_ID",
                              f"{label}: id value of incorrect type: {op.record_id}", ["Id"])
        found = self.pending.get(rid)
        if found is not None:
            return found[0], found[1], False
        table = self.org.tables.get(PREFIX_TO_SOBJECT.get(rid[:3], ""))
        if table is not None:  # the usual case: the id's key prefix names its table
            rec = table.live.get(rid)
            if rec is not None:
                return PREFIX_TO_SOBJECT[rid[:3]], rec, False
        located = self.org.find(rid)
        if located is None:
            raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        return located

    def _plan(self, obj: ObjectDef, keys: tuple[str, ...], creating: bool) -> list[_Column]:
        """How to take each written key: skipped, refused, text or converted."""
        plan: list[_Column] = []
        for key in keys:
            if key == "attributes" or key.lower() == "id":
                plan.append((_SKIP, key, None, (), 0, None))
                continue
            f, error = self._column(obj, key, creating)
            if f is None:
                plan.append((_REFUSE, key, None, error, 0, None))
            elif f.type in _CONVERTED_TYPES or f.restricted_picklist:
                plan.append((_CONVERT, f.name, f, (), 0, parsed_cache(f.type)))
            else:  # the length limit resolved once, not per row
                plan.append((_TEXT, f.name, f, (), f.length or _NO_LIMIT, None))
        return plan

    def _values(self, obj: ObjectDef, op: WriteOp, creating: bool) -> Record:
        out: Record = {}
        values = op.values
        # One plan per object and set of keys: every row of a Bulk job shares one or a few.
        pkey = (obj.name, creating, tuple(values))
        plan = self._plans.get(pkey)
        if plan is None:
            plan = self._plans[pkey] = self._plan(obj, pkey[2], creating)
        from_csv = op.from_csv
        for (how, name, f, error, limit, parsed), raw in zip(plan, values.values(), strict=True):
            if how is _TEXT:
                # Fits for sure: ASCII within the limit, or short enough even if every
                # character were two UTF-16 units (coerce() counts them otherwise).
                if type(raw) is str and raw and len(raw) <= limit and \
                        (raw.isascii() or 2 * len(raw) <= limit) and \
                        not (from_csv and raw == "#N/A"):
                    out[name] = raw  # text that fits: what coerce() would return
                    continue
            elif how is _SKIP:
                continue
            elif parsed is not None and type(raw) is str:
                hit = parsed.get(raw)  # a datetime or number text seen before: never None
                if hit is not None:
                    out[name] = hit
                    continue
            elif how is _REFUSE:
                raise RecordError(error[0], error[1], list(error[2:]))
            assert f is not None
            try:
                value = coerce(f, raw, from_csv=from_csv)
            except FieldValueError as exc:
                raise RecordError(exc.status_code, exc.message, [exc.field]) from None
            if value is None and not f.nillable:
                raise RecordError("REQUIRED_FIELD_MISSING",
                                  f"Required fields are missing: [{f.name}]", [f.name])
            if value is not None and f.type == "reference":
                self._check_reference(f, str(value))
                value = to18(str(value))
            out[name] = value
        return out

    def _check_reference(self, f: FieldDef, value: str) -> None:
        rid = to18(value)
        label = f.relationship_name or f.name
        if rid is None or sobject_of(rid) not in f.reference_to:
            raise RecordError("MALFORMED_ID", f"{label} ID: id value of incorrect type: {value}",
                              [f.name])
        if rid not in self.pending and self.org.get(sobject_of(rid) or "", rid) is None:
            raise RecordError("INVALID_CROSS_REFERENCE_KEY",
                              "invalid cross reference id", [f.name])

    def prepare(self, op: WriteOp, stamp: object) -> _Prepared:
        """Validate one op against current state; raises RecordError."""
        if op.kind == "upsert":
            op = self._upsert_target(op)
        if op.kind == "create":
            obj = self._object(op.sobject)
            if not obj.supports_dml:
                raise _unsupported(obj, "insert")
            if not obj.createable or not self._can(obj, "Create"):
                raise _insufficient() if obj.createable else RecordError(
                    "INVALID_TYPE", f"entity type cannot be inserted: {obj.name}")
            values = self._values(obj, op, creating=True)
            rec: Record = dict(obj.defaults)
            rec.update(values)
            if "ownerid" in obj.field_map and rec.get("OwnerId") is None:
                rec["OwnerId"] = self.user_id
            missing = [name for name in obj.required_names if rec.get(name) in (None, "")]
            if missing:
                raise RecordError("REQUIRED_FIELD_MISSING",
                                  f"Required fields are missing: [{', '.join(missing)}]", missing)
            prefix = obj.key_prefix
            rid = self.org.ids.new(prefix)
            rec.update(Id=rid, IsDeleted=False, CreatedDate=stamp, CreatedById=self.user_id,
                       LastModifiedDate=stamp, LastModifiedById=self.user_id,
                       SystemModstamp=stamp)
            rules.before_write(self.org, obj, rec, None, self.pending)
            changed = frozenset(k for k, v in rec.items() if v is not None)
            return _Prepared(obj.name, rid, rec, None, "created", changed, created=True)
        sobject, old, is_deleted = self._resolve(op)
        obj = self._object(sobject)
        if not obj.supports_dml:
            raise _unsupported(obj, op.kind)
        if op.kind == "undelete":
            if not is_deleted:
                raise RecordError("UNDELETE_FAILED", "Entity is not in the recycle bin")
            rec = dict(old, IsDeleted=False, LastModifiedDate=stamp,
                       LastModifiedById=self.user_id, SystemModstamp=stamp)
            return _Prepared(obj.name, str(old["Id"]), rec, old, "undeleted",
                             frozenset({"IsDeleted"}))
        if is_deleted:
            raise RecordError("ENTITY_IS_DELETED", "entity is deleted")
        if op.sobject and op.sobject != obj.name and op.sobject.lower() != obj.name.lower() \
                and op.kind == "update":
            raise RecordError("INVALID_CROSS_REFERENCE_KEY",
                              f"Provided external ID field does not exist or is not accessible:"
                              f" {op.record_id}")
        if self.lock_share and random.random() < self.lock_share:
            raise RecordError("UNABLE_TO_LOCK_ROW",
                              "unable to obtain exclusive access to this record or 1 records")
        if op.kind == "delete":
            if not obj.deletable or not self._can(obj, "Delete"):
                raise _insufficient()
            rules.before_delete(self.org, obj, old)
            return _Prepared(obj.name, str(old["Id"]), None, old, "deleted", frozenset())
        if not obj.updateable or not self._can(obj, "Edit"):
            raise _insufficient()
        values = self._values(obj, op, creating=False)
        if obj.name == "Lead" and old.get("IsConverted"):
            raise RecordError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
        rec = dict(old)
        rec.update(values)
        rec["LastModifiedDate"] = rec["SystemModstamp"] = stamp
        rec["LastModifiedById"] = self.user_id
        rules.before_write(self.org, obj, rec, old, self.pending)
        if obj.name in _FULL_DIFF:
            changed = frozenset(k for k, v in rec.items() if old.get(k) != v)
        else:  # only the written, audit and rule-computed fields can differ
            get = old.get
            names = [k for k, v in values.items() if get(k) != v]
            modified = get("LastModifiedDate")
            if modified is not stamp and modified != stamp:
                names.append("LastModifiedDate")
            if get("LastModifiedById") != self.user_id:
                names.append("LastModifiedById")
            modstamp = get("SystemModstamp")
            if modstamp is not stamp and modstamp != stamp:
                names.append("SystemModstamp")
            for k in _RULE_KEYS.get(obj.name, ()):
                if get(k) != rec[k]:
                    names.append(k)
            # one shared set per distinct change: history and events keep a reference to it
            key = tuple(names)
            changed = self._changed.get(key)  # type: ignore[assignment]
            if changed is None:
                changed = self._changed[key] = frozenset(key)
        return _Prepared(obj.name, str(old["Id"]), rec, old, "updated", changed)

    def _upsert_target(self, op: WriteOp) -> WriteOp:
        obj = self._object(op.sobject)
        key = (op.ext_field or "Id").lower()
        f = obj.field_map.get(key)
        if f is None or not (f.external_id or f.type == "id") or not \
                self.access.field_readable(obj, f):
            raise RecordError("INVALID_FIELD",
                              f"Provided external ID field does not exist or is not accessible:"
                              f" {op.ext_field}", [str(op.ext_field)])
        if op.ext_value in (None, ""):
            return WriteOp("create", obj.name, values=op.values, from_csv=op.from_csv)
        if f.type == "id":
            rid = to18(str(op.ext_value))
            matches = [rid] if rid and self.org.get(obj.name, rid) else []
        else:
            matches = [r["Id"] for r in self.org.tables[obj.name].live.values()
                       if r.get(f.name) == op.ext_value]
        if len(matches) > 1:
            raise RecordError("DUPLICATE_EXTERNAL_ID",
                              f"{f.name}: more than one record found for external id field: "
                              f"{matches}", [f.name])
        values = dict(op.values)
        if not matches:
            if f.type != "id":
                values[f.name] = op.ext_value
            return WriteOp("create", obj.name, values=values, from_csv=op.from_csv)
        values.pop(f.name, None)
        return WriteOp("update", obj.name, str(matches[0]), values, op.from_csv)
