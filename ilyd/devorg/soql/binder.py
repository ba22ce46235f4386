"""Resolve field paths against the schema and check literals against field types.

Everything here runs once per query, before any record is read, so a bad query fails
fast with Salesforce's error code and wording, caret at the offending field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ilyd.devorg.soql.errors import (
    SoqlError,
    bad_relationship,
    located,
    no_such_column,
    unsupported_sobject,
)
from ilyd.devorg.soql.nodes import FieldPath, Literal, LiteralKind
from ilyd.devorg.soql.schema import FieldInfo, Schema

ID_TYPES = frozenset({"id", "reference"})
TEXT_TYPES = frozenset({
    "string", "textarea", "url", "email", "phone", "picklist", "multipicklist", "combobox",
    "encryptedstring",
}) | ID_TYPES
NUMBER_TYPES = frozenset({"int", "double", "currency", "percent", "long"})
# The type word Salesforce uses in "must be of type X" messages.
_TYPE_WORD = {"int": "integer", "long": "long", "double": "double", "currency": "double",
              "percent": "double", "boolean": "boolean", "date": "date",
              "datetime": "dateTime"} | {t: "string" for t in TEXT_TYPES} | {
              "id": "id", "reference": "id"}
_ACCEPTS = {"boolean": {LiteralKind.BOOLEAN},
            "date": {LiteralKind.DATE, LiteralKind.DATE_KEYWORD},
            "datetime": {LiteralKind.DATETIME, LiteralKind.DATE_KEYWORD}} | {
            t: {LiteralKind.NUMBER} for t in NUMBER_TYPES} | {
            t: {LiteralKind.STRING} for t in TEXT_TYPES}
_ID_RE = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


@dataclass(frozen=True)
class Hop:
    """One parent relationship crossed by a path: Account.OwnerId → User."""

    reference_field: str  # canonical name of the reference field: "OwnerId"
    relationship: str  # canonical relationship name: "Owner"
    targets: tuple[str, ...]  # canonical parent objects, in describe order


@dataclass(frozen=True)
class Resolved:
    """A field path bound to the schema."""

    path: FieldPath
    hops: tuple[Hop, ...]
    info: FieldInfo
    sobject: str  # the object ``info`` belongs to

    @property
    def canonical(self) -> str:
        """The path in describe casing: "Owner.Name"."""
        return ".".join([hop.relationship for hop in self.hops] + [self.info.name])


class Binder:
    """Schema look-ups for one query text, cached per object."""

    def __init__(self, schema: Schema, text: str, alias: str | None = None) -> None:
        self.schema = schema
        self.text = text
        self.alias = alias.lower() if alias else None
        self._fields: dict[str, Mapping[str, FieldInfo]] = {}
        self._relationships: dict[str, dict[str, FieldInfo]] = {}

    def sobject(self, name: str, pos: int) -> str:
        """Canonical object name, or INVALID_TYPE."""
        canonical = self.schema.sobject(name)
        if canonical is None:
            raise unsupported_sobject(self.text, pos, name)
        return canonical

    def fields(self, sobject: str) -> Mapping[str, FieldInfo]:
        """The readable fields of ``sobject``, keyed lower-case."""
        if sobject not in self._fields:
            fields = self.schema.fields(sobject)
            self._fields[sobject] = fields
            self._relationships[sobject] = {
                info.relationship_name.lower(): info
                for info in fields.values()
                if info.relationship_name and info.reference_to
            }
        return self._fields[sobject]

    def resolve(self, sobject: str, path: FieldPath) -> Resolved:
        """Bind ``path`` starting at ``sobject``; INVALID_FIELD when it does not exist."""
        parts = list(path.parts)
        fields = self.fields(sobject)
        relationships = self._relationships[sobject]
        # "SELECT Account.Name FROM Account" / "SELECT a.Name FROM Account a": a leading
        # object name or alias is allowed.
        if len(parts) > 1 and parts[0].lower() in (sobject.lower(), self.alias) and (
            parts[0].lower() not in relationships
        ):
            parts = parts[1:]
        hops: list[Hop] = []
        current = sobject
        for part in parts[:-1]:
            reference = self._relationships[current].get(part.lower())
            targets = tuple(
                t for t in (self.schema.sobject(r) for r in reference.reference_to) if t
            ) if reference else ()
            if reference is None or not targets:
                raise bad_relationship(self.text, path.pos, part)
            hops.append(Hop(reference.name, reference.relationship_name or part, targets))
            current = targets[0]
            fields = self.fields(current)
        info = fields.get(parts[-1].lower())
        if info is None:
            raise no_such_column(self.text, path.pos, parts[-1], current)
        return Resolved(path, tuple(hops), info, current)

    # -- checks ------------------------------------------------------------------------
    def check_filterable(self, field: Resolved) -> None:
        """INVALID_FIELD for a field describe marks not filterable."""
        if not field.info.filterable:
            raise located("INVALID_FIELD", self.text, field.path.pos,
                          f"field '{field.info.name}' can not be filtered in a query call")

    def check_sortable(self, field: Resolved) -> None:
        """INVALID_FIELD for a field describe marks not sortable."""
        if not field.info.sortable:
            raise located("INVALID_FIELD", self.text, field.path.pos,
                          f"field '{field.info.name}' can not be sorted in a query call")

    def invalid_operator(self, field: Resolved) -> SoqlError:
        """INVALID_QUERY_FILTER_OPERATOR, e.g. LIKE on an id or boolean field."""
        return located("INVALID_QUERY_FILTER_OPERATOR", self.text, field.path.pos,
                       f"invalid operator on {field.info.type} field")

    def check_operator(self, field: Resolved, op: str) -> None:
        """Reject operators the field type has no meaning for."""
        kind = field.info.type
        if op == "LIKE" and (kind not in TEXT_TYPES or kind in ID_TYPES
                             or kind == "multipicklist"):
            raise self.invalid_operator(field)
        if op in ("<", ">", "<=", ">=") and kind in ("boolean", "multipicklist"):
            raise self.invalid_operator(field)
        if op in ("INCLUDES", "EXCLUDES") and kind != "multipicklist":
            raise self.invalid_operator(field)

    def check_literal(self, field: Resolved, literal: Literal) -> None:
        """Salesforce's type check of a filter value against the field it is compared with."""
        kind = field.info.type
        if literal.kind is LiteralKind.NULL:
            return
        accepted = _ACCEPTS.get(kind)
        if accepted is not None and literal.kind not in accepted:
            word = _TYPE_WORD.get(kind, kind)
            quoting = "should be enclosed in quotes" if kind in TEXT_TYPES else (
                "should not be enclosed in quotes")
            raise located(
                "INVALID_FIELD", self.text, field.path.pos,
                f"value of filter criterion for field '{field.info.name}' must be of type "
                f"{word} and {quoting}", len(field.path.text),
            )
        if kind in ID_TYPES and not _ID_RE.fullmatch(str(literal.value)):
            raise located("INVALID_QUERY_FILTER_OPERATOR", self.text, literal.pos,
                          f"invalid ID field: {literal.value}")
