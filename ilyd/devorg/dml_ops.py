"""What a record write asks and answers: WriteOp in, SaveResult out, RecordError for the
failure of one record — in the shapes and with the codes Salesforce uses.

A leaf module: `dml_prepare` (validation) and `dml` (save) both build on these types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

ROLLED_BACK = ("ALL_OR_NONE_OPERATION_ROLLED_BACK",
               "Record rolled back because not all records were valid and the request was "
               "using AllOrNone header")


class RecordError(Exception):
    """A per-record failure: Salesforce's statusCode, message and fields."""

    def __init__(self, status_code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.fields = fields or []

    def as_dict(self) -> dict[str, object]:
        """The per-record error object of a SaveResult."""
        return {"statusCode": self.status_code, "message": self.message, "fields": self.fields}


@dataclass(slots=True)  # one per written row: a Bulk job makes millions
class WriteOp:
    """One requested write. For upsert, `ext_field`/`ext_value` find the target."""

    kind: str  # create | update | delete | undelete | upsert
    sobject: str | None = None
    record_id: str | None = None
    values: Mapping[str, object] = field(default_factory=dict)
    from_csv: bool = False
    ext_field: str | None = None
    ext_value: object = None


@dataclass(slots=True)  # one per written row: a Bulk job makes millions
class SaveResult:
    """The outcome of one WriteOp."""

    id: str | None
    success: bool
    errors: list[RecordError] = field(default_factory=list)
    created: bool = False

    def as_dict(self) -> dict[str, object]:
        """Collections' SaveResult JSON (no `id` key on failures without an id)."""
        out: dict[str, object] = {"id": self.id} if self.id else {}
        out["success"] = self.success
        out["errors"] = [e.as_dict() for e in self.errors]
        return out
