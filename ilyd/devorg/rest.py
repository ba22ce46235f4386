"""REST `/services/data`: versions, resources, describe, sObject CRUD and /limits."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ilyd.devorg import describe as describing
from ilyd.devorg.cometd_state import streaming_of
from ilyd.devorg.dml import RecordError, WriteOp, save
from ilyd.devorg.ids import sobject_of, to18
from ilyd.devorg.org import OrgState, Record
from ilyd.devorg.schema import ObjectDef
from ilyd.devorg.security import Access
from ilyd.devorg.values import to_json
from ilyd.devorg.web import ApiError, Request, Response, Router, json_response

if TYPE_CHECKING:
    from ilyd.devorg.app import DevOrg

V = r"/services/data/v(?P<version>\d+\.\d)"
# Every version a current org serves, up to the current release (Winter '27, 68.0):
# https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_versions.htm
RELEASES = {37: "Summer '16", 38: "Winter '17", 39: "Spring '17", 40: "Summer '17",
             41: "Winter '18", 42: "Spring '18", 43: "Summer '18", 44: "Winter '19",
             45: "Spring '19", 46: "Summer '19", 47: "Winter '20", 48: "Spring '20",
             49: "Summer '20", 50: "Winter '21", 51: "Spring '21", 52: "Summer '21",
             53: "Winter '22", 54: "Spring '22", 55: "Summer '22", 56: "Winter '23",
             57: "Spring '23", 58: "Summer '23", 59: "Winter '24", 60: "Spring '24",
             61: "Summer '24", 62: "Winter '25", 63: "Spring '25", 64: "Summer '25",
             65: "Winter '26", 66: "Spring '26", 67: "Summer '26", 68: "Winter '27"}


def register(router: Router, dev: DevOrg) -> None:
    """Add the REST routes."""
    router.add("GET", r"/services/data", versions, "versions", "public")
    router.add("GET", V, resources, "resources")
    router.add("GET", V + r"/sobjects", describe_global, "describeGlobal")
    router.add("GET", V + r"/sobjects/(?P<sobject>\w+)/describe", describe_object, "describe")
    router.add("GET POST", V + r"/sobjects/(?P<sobject>\w+)", sobject_root, "sobject")
    router.add("GET PATCH DELETE", V + r"/sobjects/(?P<sobject>\w+)/(?P<id>[^/]+)",
               sobject_row, "sobject.row")
    router.add("PATCH", V + r"/sobjects/(?P<sobject>\w+)/(?P<field>\w+)/(?P<value>[^/]+)",
               upsert_by_external_id, "sobject.upsert")
    router.add("GET", V + r"/limits", limits, "limits")


# -- helpers ------------------------------------------------------------------------------
def context(request: Request) -> tuple[OrgState, str, Access]:
    """(org, user id, access) of an authenticated request."""
    session = request.session
    assert session is not None
    return session.org, session.user_id, session.org.access(session.user_id)


def resolve_object(request: Request, name: str, *, tooling: bool = False) -> ObjectDef:
    """The sObject named in a path, as this user may see it; 404 NOT_FOUND otherwise."""
    org, _, access = context(request)
    obj = org.object_def(name, tooling=tooling)
    if obj is None or not access.can(obj, "Read") or (
            obj.name == "PushTopic" and not org.settings.streaming_enabled):
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    return obj


def record_json(obj: ObjectDef, rec: Record, access: Access, version: str,
                fields: list[str] | None = None, *, tooling: bool = False
                ) -> dict[str, object]:
    """A record as REST returns it: attributes first, then readable fields."""
    base = "tooling/" if tooling else ""
    url = f"/services/data/v{version}/{base}sobjects/{obj.name}/{rec['Id']}"
    out: dict[str, object] = {"attributes": {"type": obj.name, "url": url}}
    names = fields if fields is not None else [
        f.name for f in obj.fields if access.field_readable(obj, f)]
    for name in names:
        out[name] = to_json(rec.get(name))
    return out


def error_response(err: RecordError) -> Response:
    """A single-record failure as a top-level REST error."""
    status = 400
    if err.status_code == "ENTITY_IS_DELETED":
        status = 404
    item: dict[str, object] = {"message": err.message, "errorCode": err.status_code}
    if err.fields:
        item["fields"] = err.fields
    return json_response([item], status)


def parse_json_body(request: Request) -> dict[str, object]:
    """The body as a JSON object, or 400 JSON_PARSER_ERROR as Salesforce words it."""
    try:
        body = json.loads(request.body or b"")
    except ValueError as exc:
        raise ApiError(400, "JSON_PARSER_ERROR",
                       f"Unexpected character ('{request.body[:1].decode(errors='replace')}' "
                       f"(code {request.body[0] if request.body else 0})): expected a valid "
                       f"value at [line:1, column:{getattr(exc, 'colno', 1)}]") from None
    if not isinstance(body, dict):
        raise ApiError(400, "JSON_PARSER_ERROR",
                       "Cannot deserialize instance of SObject from START_ARRAY value")
    return body


def find_row(org: OrgState, obj: ObjectDef, raw_id: str) -> Record:
    """A live record of `obj` by id, or Salesforce's 404s."""
    rid = to18(raw_id)
    if rid is None:
        raise ApiError(404, "NOT_FOUND",
                       f"Provided external ID field does not exist or is not accessible: {raw_id}")
    if sobject_of(rid) != obj.name and not (obj.name == "CustomField" and rid[:3] == "00N"):
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    rec = org.get(obj.name, rid, deleted=True)
    if rec is None:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    if rec.get("IsDeleted"):
        raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
    return rec


def select_fields(obj: ObjectDef, access: Access, raw: str | None) -> list[str] | None:
    """Validate `?fields=a,b` against what the user can read."""
    if not raw:
        return None
    names = []
    for item in raw.split(","):
        f = obj.field_map.get(item.strip().lower())
        if f is None or not access.field_readable(obj, f):
            raise ApiError(400, "INVALID_FIELD",
                           f"No such column '{item.strip()}' on entity '{obj.name}'. If you are "
                           "attempting to use a custom field, be sure to append the '__c' after "
                           "the custom field name. Please reference your WSDL or the describe "
                           "call for the appropriate names.")
        names.append(f.name)
    return names


# -- handlers -----------------------------------------------------------------------------
def versions(request: Request) -> Response:
    """GET /services/data — every supported version, oldest first."""
    return json_response([{"label": label, "url": f"/services/data/v{n}.0", "version": f"{n}.0"}
                          for n, label in RELEASES.items()])


def resources(request: Request) -> Response:
    """GET /services/data/vXX.X — the resource directory."""
    base = f"/services/data/v{request.params['version']}"
    names = ("tooling", "metadata", "eclair", "folders", "prechatForms", "chatter", "tabs",
             "appMenu", "quickActions", "queryAll", "commerce", "wave", "analytics", "search",
             "identity", "composite", "parameterizedSearch", "theme", "nouns", "recent",
             "licensing", "limits", "async-queries", "query", "jobs", "sobjects", "actions",
             "support")
    body = {n: f"{base}/{n}" for n in names}
    assert request.session is not None
    body["identity"] = (f"{request.session.org.identity.org_id}/{request.session.user_id}")
    return json_response(body)


def describe_global(request: Request) -> Response:
    """GET /sobjects."""
    org, _, access = context(request)
    return json_response(describing.describe_global(org, access, request.params["version"]))


def describe_object(request: Request) -> Response:
    """GET /sobjects/X/describe."""
    org, _, access = context(request)
    obj = resolve_object(request, request.params["sobject"])
    return Response(200, describing.describe_json(org, obj, access, request.params["version"]))


def sobject_root(request: Request) -> Response:
    """GET basic info, or POST create."""
    org, user_id, access = context(request)
    obj = resolve_object(request, request.params["sobject"])
    version = request.params["version"]
    if request.method == "GET":
        return json_response({"objectDescribe": describing.object_summary(obj, access, version),
                              "recentItems": []})
    body = parse_json_body(request)
    result = save(org, user_id, [WriteOp("create", obj.name, values=body)])[0]
    if not result.success:
        return error_response(result.errors[0])
    return json_response({"id": result.id, "success": True, "errors": []}, 201)


def sobject_row(request: Request) -> Response:
    """GET / PATCH / DELETE one record."""
    org, user_id, access = context(request)
    obj = resolve_object(request, request.params["sobject"])
    rec = find_row(org, obj, request.params["id"])
    if request.method == "GET":
        fields = select_fields(obj, access, request.arg("fields"))
        if fields is not None:
            fields = [n for n in ("Id",) if n not in fields] + fields
        return json_response(record_json(obj, rec, access, request.params["version"], fields))
    if request.method == "PATCH":
        op = WriteOp("update", obj.name, str(rec["Id"]), parse_json_body(request))
    else:
        op = WriteOp("delete", obj.name, str(rec["Id"]))
    result = save(org, user_id, [op])[0]
    if not result.success:
        return error_response(result.errors[0])
    return Response(204, b"", content_type=None)


def upsert_by_external_id(request: Request) -> Response:
    """PATCH /sobjects/X/Field/value — 201 created or 200 updated."""
    org, user_id, _ = context(request)
    obj = resolve_object(request, request.params["sobject"])
    body = parse_json_body(request)
    op = WriteOp("upsert", obj.name, values=body, ext_field=request.params["field"],
                 ext_value=request.params["value"])
    result = save(org, user_id, [op])[0]
    if not result.success:
        err = result.errors[0]
        if err.status_code == "DUPLICATE_EXTERNAL_ID":
            return json_response([], 300)
        return error_response(err)
    return json_response({"id": result.id, "success": True, "errors": [],
                          "created": result.created}, 201 if result.created else 200)


def _platform_event_deliveries(org: OrgState, pair: Any) -> dict[str, int]:
    """Change events delivered to CometD clients in 24 h, against the org's allocation."""
    streaming = streaming_of(org)
    limit = streaming.settings.cdc_daily_delivery_limit
    return pair(limit, limit - streaming.cdc_delivered_today())  # type: ignore[no-any-return]


def limits(request: Request) -> Response:
    """GET /limits — the org's allowances and what is left of them."""
    org, _, access = context(request)
    # "available ... for API users with the View Setup and Configuration permission"
    # https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_limits.htm
    # The call is still counted (and carries Sforce-Limit-Info) like any refused request.
    if not access.has("PermissionsViewSetup"):
        raise ApiError(403, "INSUFFICIENT_ACCESS",
                       "The Limits resource requires the View Setup and Configuration"
                       " permission.")
    used = org.usage.used()

    def pair(maximum: int, remaining: int) -> dict[str, int]:
        return {"Max": maximum, "Remaining": max(0, remaining)}

    batch_max = org.settings.bulk_batch_limit
    streaming_clients = int(org.extra.get("streaming_clients", 0))  # type: ignore[call-overload]
    return json_response({
        "ActiveScratchOrgs": pair(3, 3), "AnalyticsExternalDataSizeMB": pair(40960, 40960),
        "ConcurrentAsyncGetReportInstances": pair(200, 200),
        "ConcurrentSyncReportRuns": pair(20, 20),
        "DailyAnalyticsDataflowJobExecutions": pair(60, 60),
        "DailyApiRequests": pair(org.settings.api_limit, org.settings.api_limit - used),
        "DailyDeliveredPlatformEvents": _platform_event_deliveries(org, pair),
        "DailyAsyncApexExecutions": pair(250000, 250000),
        "DailyBulkApiBatches": pair(batch_max, batch_max - org.bulk_batches_used),
        "DailyBulkV2QueryFileStorageMB": pair(976562, 976562),
        "DailyBulkV2QueryJobs": pair(10000, 10000),
        "DailyDurableGenericStreamingApiEvents": pair(10000, 10000),
        "DailyDurableStreamingApiEvents": pair(10000, 10000),
        "DailyGenericStreamingApiEvents": pair(10000, 10000),
        "DailyStreamingApiEvents": pair(10000, 10000),
        "DailyWorkflowEmails": pair(2000, 2000), "DataStorageMB": pair(5, 5),
        "DurableStreamingApiConcurrentClients": pair(20, 20 - streaming_clients),
        "FileStorageMB": pair(20, 20), "HourlyAsyncReportRuns": pair(1200, 1200),
        "HourlyDashboardRefreshes": pair(200, 200), "HourlyDashboardResults": pair(5000, 5000),
        "HourlyDashboardStatuses": pair(999999999, 999999999),
        "HourlyODataCallout": pair(10000, 10000), "HourlySyncReportRuns": pair(500, 500),
        "HourlyTimeBasedWorkflow": pair(50, 50), "MassEmail": pair(10, 10),
        "PermissionSets": pair(1500, 1500), "SingleEmail": pair(15, 15),
        "StreamingApiConcurrentClients": pair(20, 20 - streaming_clients),
    })
