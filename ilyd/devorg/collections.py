"""sObject Collections `/composite/sobjects`: up to 200 records per call, allOrNone."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ilyd.devorg.dml import RecordError, SaveResult, WriteOp, save
from ilyd.devorg.dml_prepare import no_such_column
from ilyd.devorg.ids import to18
from ilyd.devorg.rest import V, context, record_json, resolve_object, select_fields
from ilyd.devorg.web import ApiError, Request, Response, Router, json_response

if TYPE_CHECKING:
    from ilyd.devorg.app import DevOrg

MAX_RECORDS = 200


def register(router: Router, dev: DevOrg) -> None:
    """Add the collections routes (data API and Tooling share them)."""
    router.add("POST PATCH DELETE", V + r"/composite/sobjects", write, "composite.sobjects")
    router.add("GET POST", V + r"/composite/sobjects/(?P<sobject>\w+)", retrieve,
               "composite.sobjects.retrieve")


def _body(request: Request) -> dict[str, object]:
    try:
        body = json.loads(request.body or b"")
    except ValueError:
        raise ApiError(400, "JSON_PARSER_ERROR", "Unexpected end-of-input: expected close "
                       "marker for Object") from None
    if not isinstance(body, dict):
        raise ApiError(400, "JSON_PARSER_ERROR",
                       "Cannot deserialize instance of SObjectCollection from START_ARRAY value")
    return body


def write(request: Request) -> Response:
    """POST create / PATCH update / DELETE ?ids= — one SaveResult per record, in order."""
    org, user_id, _ = context(request)
    tooling = "/tooling/" in request.path
    if request.method == "DELETE":
        ids = [i for i in (request.arg("ids") or "").split(",") if i]
        all_or_none = (request.arg("allOrNone") or "false").lower() == "true"
        if not ids:
            raise ApiError(400, "MISSING_ARGUMENT", "Missing parameter: ids")
        if len(ids) > MAX_RECORDS:
            raise ApiError(400, "EXCEEDED_ID_LIMIT",
                           f"record limit reached. cannot submit more than {MAX_RECORDS} "
                           "records into this call")
        ops = [WriteOp("delete", record_id=i) for i in ids]
        results = save(org, user_id, ops, all_or_none=all_or_none, tooling=tooling)
        return json_response([_delete_result(r, i) for r, i in zip(results, ids, strict=True)])
    body = _body(request)
    records = body.get("records")
    all_or_none = bool(body.get("allOrNone", False))
    if not isinstance(records, list):
        raise ApiError(400, "INVALID_FIELD", "No records were provided")
    if len(records) > MAX_RECORDS:
        raise ApiError(400, "EXCEEDED_ID_LIMIT",
                       f"record limit reached. cannot submit more than {MAX_RECORDS} records "
                       "into this call")
    ops: list[WriteOp] = []
    early: dict[int, RecordError] = {}
    for index, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of SObject")
        attrs = rec.get("attributes")
        sobject = attrs.get("type") if isinstance(attrs, dict) else None
        if not sobject:
            raise ApiError(400, "INVALID_TYPE",
                           "In field: attributes - No type defined for the specified sObject")
        values = {k: v for k, v in rec.items() if k != "attributes"}
        _known_columns(request, str(sobject), values, tooling=tooling)
        rid = next((v for k, v in values.items() if k.lower() == "id"), None)
        if request.method == "POST":
            if rid:
                early[index] = RecordError("INVALID_FIELD",
                                           "cannot specify Id in an insert call", ["Id"])
            ops.append(WriteOp("create", str(sobject), values=values))
        else:
            if not rid:
                early[index] = RecordError("MISSING_ARGUMENT",
                                           "Id not specified in an update call", [])
            ops.append(WriteOp("update", str(sobject), str(rid or ""), values))
    if early and all_or_none:
        results = [SaveResult(None, False, [early.get(i) or RecordError(
            "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "Record rolled back because not all records were valid and the request was using "
            "AllOrNone header")]) for i in range(len(ops))]
    else:
        live = [op for i, op in enumerate(ops) if i not in early]
        saved = iter(save(org, user_id, live, all_or_none=all_or_none, tooling=tooling))
        results = [SaveResult(None, False, [early[i]]) if i in early else next(saved)
                   for i in range(len(ops))]
    return json_response([r.as_dict() for r in results])


def _known_columns(request: Request, sobject: str, values: dict[str, object], *,
                   tooling: bool) -> None:
    """A column the object lacks (or the user cannot see) fails reading the request body,
    before any record is saved: one top-level 400 for the whole call, naming the column
    in its message only, as a single-record write does. Salesforce's REST API guide
    documents the 400 for a request that is not well formed, not this case's wording;
    devorg takes the whole-call reading, the stricter one.
    https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_update.htm"""
    org, _, access = context(request)
    obj = org.object_def(sobject, tooling=tooling)
    if obj is None:
        return  # save() answers INVALID_TYPE per record
    for key in values:
        f = obj.field_map.get(key.lower())
        if f is None or not access.field_readable(obj, f):
            error = no_such_column(key, obj.name)
            raise ApiError(400, error.status_code, error.message)


def _delete_result(result: SaveResult, raw_id: str) -> dict[str, object]:
    out = result.as_dict()
    if not result.success and "id" not in out:
        out = {"id": to18(raw_id) or raw_id, **out}
    return out


def retrieve(request: Request) -> Response:
    """GET/POST /composite/sobjects/X?ids=…&fields=… — records (null for missing ids)."""
    org, _, access = context(request)
    obj = resolve_object(request, request.params["sobject"])
    if request.method == "POST":
        body = _body(request)
        ids = [str(i) for i in body.get("ids") or []]  # type: ignore[union-attr]
        fields_raw = ",".join(str(f) for f in body.get("fields") or [])  # type: ignore[union-attr]
    else:
        ids = [i for i in (request.arg("ids") or "").split(",") if i]
        fields_raw = request.arg("fields") or ""
    if not fields_raw:
        raise ApiError(400, "MISSING_ARGUMENT", "Missing parameter: fields")
    fields = select_fields(obj, access, fields_raw)
    out: list[object] = []
    for raw in ids:
        rid = to18(raw)
        rec = org.get(obj.name, rid) if rid else None
        out.append(record_json(obj, rec, access, request.params["version"], fields)
                   if rec else None)
    return json_response(out)
