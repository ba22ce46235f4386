"""The SOQL engine's view of one org: `OrgSchema` (its objects and fields as one user
sees them) and `OrgSource` (its rows). A leaf under the REST query endpoint, the
PushTopic rules and the streaming state, which all run SOQL over an org."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ilyd.devorg import soql
from ilyd.devorg.logins import visible
from ilyd.devorg.org import OrgState
from ilyd.devorg.schema import SYSTEM_PERMISSIONS

__all__ = ["OrgSchema", "OrgSource"]


class OrgSchema:
    """`soql.Schema` over one org, as one user sees it (FLS applied)."""

    def __init__(self, org: OrgState, user_id: str, *, tooling: bool = False) -> None:
        self.org = org
        self.access = org.access(user_id)
        self.tooling = tooling
        self._cache: dict[str, Mapping[str, object]] = {}
        # What callers derive from this schema and may keep as long as it (the CometD
        # endpoint's PushTopic projections); keyed as they like.
        self.memo: dict[object, object] = {}

    def sobject(self, name: str) -> str | None:
        """Canonical name of a readable object, case-insensitive."""
        obj = self.org.object_def(name, tooling=self.tooling)
        if obj is None and self.tooling:
            obj = self.org.object_def(name)
        if obj is None or not self.access.can(obj, "Read"):
            return None
        if obj.name == "PushTopic" and not self.org.settings.streaming_enabled:
            return None
        return obj.name

    def fields(self, sobject: str) -> Mapping[str, object]:
        """Readable fields keyed lower-case, as `soql.FieldInfo`."""
        if sobject in self._cache:
            return self._cache[sobject]
        obj = self.org.object_def(sobject, tooling=self.tooling) or self.org.object_def(sobject)
        out: dict[str, object] = {}
        if obj is not None:
            for f in obj.fields:
                if self.access.field_readable(obj, f):
                    out[f.lower] = soql.FieldInfo(
                        name=f.name, type=f.type, reference_to=f.reference_to,
                        relationship_name=f.relationship_name, filterable=f.filterable,
                        sortable=f.sortable)
        self._cache[sobject] = out
        return out


class OrgSource:
    """`soql.DataSource` over one org's tables."""

    def __init__(self, org: OrgState, *, all_rows: bool = False,
                 user_id: str | None = None) -> None:
        self.org = org
        self.all_rows = all_rows
        self.user_id = user_id  # row-level rules (LoginHistory) apply when given

    def scan(self, sobject: str) -> Iterable[Mapping[str, object]]:
        """Live records (plus recycle-bin ones for queryAll)."""
        if sobject == "UserPermissionAccess":
            return [self._permission_row()] if self.user_id is not None else []
        rows = self.org.scan(sobject, all_rows=self.all_rows)
        if sobject == "LoginHistory" and self.user_id is not None:
            return iter(visible(self.org, self.user_id, list(rows)))
        return rows

    def _permission_row(self) -> Mapping[str, object]:
        """The running user's UserPermissionAccess row (Salesforce's Id is all zeros)."""
        assert self.user_id is not None
        held = self.org.access(self.user_id).system
        return {"Id": "000000000000000AAA",
                **{p: p in held for p in SYSTEM_PERMISSIONS}}

    def get(self, sobject: str, record_id: str) -> Mapping[str, object] | None:
        """One record by id (parent relationship lookups)."""
        return self.org.get(sobject, record_id, deleted=self.all_rows)
