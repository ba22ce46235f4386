"""Tooling API: CustomField create / read / update / delete, tooling describe.

A new field joins its object's schema with no field-level security — invisible and
unwritable for everyone until a FieldPermissions row grants it (security.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ilyd.devorg import describe as describing
from ilyd.devorg.dml import WriteOp, save
from ilyd.devorg.rest import (
    V,
    context,
    error_response,
    find_row,
    parse_json_body,
    record_json,
    resolve_object,
)
from ilyd.devorg.schema import TOOLING_OBJECTS
from ilyd.devorg.web import Request, Response, Router, json_response

if TYPE_CHECKING:
    from ilyd.devorg.app import DevOrg

T = V + r"/tooling"


def register(router: Router, dev: DevOrg) -> None:
    """Add the Tooling routes (tooling queries live in query.py)."""
    router.add("GET", T + r"/sobjects", describe_global, "tooling.describeGlobal")
    router.add("GET", T + r"/sobjects/(?P<sobject>\w+)/describe", describe_object,
               "tooling.describe")
    router.add("POST", T + r"/sobjects/(?P<sobject>\w+)", create, "tooling.sobject")
    router.add("GET PATCH DELETE", T + r"/sobjects/(?P<sobject>\w+)/(?P<id>\w+)", row,
               "tooling.sobject.row")


def describe_global(request: Request) -> Response:
    """GET /tooling/sobjects."""
    _, _, access = context(request)
    version = request.params["version"]
    return json_response({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": [
        describing.object_summary(o, access, version, tooling=True)
        for o in TOOLING_OBJECTS.values()]})


def describe_object(request: Request) -> Response:
    """GET /tooling/sobjects/X/describe."""
    org, _, access = context(request)
    obj = resolve_object(request, request.params["sobject"], tooling=True)
    return Response(200, describing.describe_json(org, obj, access, request.params["version"],
                                                  tooling=True))


def create(request: Request) -> Response:
    """POST /tooling/sobjects/CustomField."""
    org, user_id, _ = context(request)
    obj = resolve_object(request, request.params["sobject"], tooling=True)
    result = save(org, user_id, [WriteOp("create", obj.name, values=parse_json_body(request))],
                  tooling=True)[0]
    if not result.success:
        return error_response(result.errors[0])
    return json_response({"id": result.id, "success": True, "errors": [], "warnings": [],
                          "infos": []}, 201)


def row(request: Request) -> Response:
    """GET / PATCH / DELETE one Tooling record."""
    org, user_id, access = context(request)
    obj = resolve_object(request, request.params["sobject"], tooling=True)
    rec = find_row(org, obj, request.params["id"])
    if request.method == "GET":
        return json_response(record_json(obj, rec, access, request.params["version"],
                                         tooling=True))
    if request.method == "PATCH":
        body = parse_json_body(request)
        # FullName may be repeated in an update but never changed
        if str(body.get("FullName", rec["FullName"])).lower() == str(rec["FullName"]).lower():
            body.pop("FullName", None)
        op = WriteOp("update", obj.name, str(rec["Id"]), body)
    else:
        op = WriteOp("delete", obj.name, str(rec["Id"]))
    result = save(org, user_id, [op], tooling=True)[0]
    if not result.success:
        return error_response(result.errors[0])
    if request.method == "DELETE" and obj.name == "CustomField":
        # Salesforce deletes a field's permission rows with the field.
        grants = [r["Id"] for r in org.tables["FieldPermissions"].live.values()
                  if str(r["Field"]).lower() == str(rec["FullName"]).lower()]
        save(org, user_id, [WriteOp("delete", record_id=str(g)) for g in grants])
    return Response(204, b"", content_type=None)
