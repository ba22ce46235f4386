"""Composite `POST /composite` and its Tooling twin `POST /tooling/composite`: up to 25
subrequests in one call, counted as one call.

https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_composite_post.htm
"The entire series of requests counts as a single call toward your API limits"; up to
25 subrequests, of which up to 5 query operations. Each subrequest is routed as the
request itself would be (same session, same handlers, not counted again) and answered
as `{"body", "httpHeaders", "httpStatusCode", "referenceId"}` in `compositeResponse`.

REST composite: devorg serves read subrequests only (GET of the query, queryAll and
sObject resources). Tooling composite
(https://developer.salesforce.com/docs/atlas.en-us.api_tooling.meta/api_tooling/tooling_resources_composite_composite.htm,
"All sObject resources (vXX.X/tooling/sobjects/)" and "The Query resource"): the same
reads of Tooling resources, and creates (`POST /tooling/sobjects/X` with a `body`) when
`allOrNone` is false. `@{reference}` substitutions, other writes and the rollback of
`allOrNone` are refused with 400 rather than half-emulated (ADMIN.md says so).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from ilyd.devorg.rest import V
from ilyd.devorg.web import ApiError, Request, Response, Router, json_response

if TYPE_CHECKING:
    from ilyd.devorg.app import DevOrg

# https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_composite_post.htm
MAX_SUBREQUESTS = 25
MAX_QUERIES = 5  # query, queryAll and their next pages
_QUERY_ROUTES = frozenset({"query", "queryAll", "query.more", "queryAll.more"})
_READ_ROUTES = _QUERY_ROUTES | {"sobject", "sobject.row", "describe", "describeGlobal"}
_TOOLING_READ_ROUTES = _QUERY_ROUTES | {"tooling.sobject.row", "tooling.describe",
                                        "tooling.describeGlobal"}
_TOOLING = "/tooling/"
_HALTED = ("PROCESSING_HALTED",
           "The transaction was rolled back since another operation in the same transaction"
           " failed.")


def register(router: Router, dev: DevOrg) -> None:
    """Add POST /composite."""
    router.add("POST", V + r"/composite", lambda request: composite(request, router),
               "composite")
    router.add("POST", V + r"/tooling/composite",
               lambda request: composite(request, router, tooling=True), "tooling.composite")


def composite(request: Request, router: Router, *, tooling: bool = False) -> Response:
    """Run each subrequest in order; one answer per subrequest."""
    try:
        body = json.loads(request.body or b"")
    except ValueError:
        raise ApiError(400, "JSON_PARSER_ERROR", "Unexpected end-of-input: expected close "
                       "marker for Object") from None
    subrequests = body.get("compositeRequest") if isinstance(body, dict) else None
    if not isinstance(subrequests, list) or not subrequests:
        raise ApiError(400, "INVALID_INPUT", "compositeRequest must be a non-empty array")
    if len(subrequests) > MAX_SUBREQUESTS:
        raise ApiError(400, "LIMIT_EXCEEDED",
                       f"Maximum number of subrequests allowed is {MAX_SUBREQUESTS}")
    all_or_none = bool(body.get("allOrNone", False))
    routed = [_route(router, request, sub, tooling=tooling, all_or_none=all_or_none)
              for sub in subrequests]
    if sum(name in _QUERY_ROUTES for _, name, _ in routed) > MAX_QUERIES:
        raise ApiError(400, "LIMIT_EXCEEDED",
                       f"Maximum number of query operations allowed is {MAX_QUERIES}")
    answers: list[dict[str, Any]] = []
    failed = False
    for (sub, _, handler), spec in zip(routed, subrequests, strict=True):
        reference = str(spec["referenceId"])
        if failed and all_or_none:
            answers.append(_answer(reference, 400, [{"errorCode": _HALTED[0],
                                                     "message": _HALTED[1]}]))
            continue
        try:
            response = handler(sub)
        except ApiError as exc:
            response = exc.response
        failed = failed or response.status >= 400
        content = bytes(response.body) if isinstance(response.body, bytes | bytearray) else b""
        answer = json.loads(content) if content else None
        # A create's answer names the new record, as Salesforce's does.
        headers = ({"Location": f"{sub.path}/{answer['id']}"}
                   if response.status == 201 and isinstance(answer, dict) and answer.get("id")
                   else {})
        answers.append(_answer(reference, response.status, answer, headers))
    return json_response({"compositeResponse": answers})


def _answer(reference: str, status: int, body: object,
            headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"body": body, "httpHeaders": headers or {}, "httpStatusCode": status,
            "referenceId": reference}


def _route(router: Router, parent: Request, spec: object, *, tooling: bool = False,
           all_or_none: bool = False) -> tuple[Request, str, Any]:
    """The subrequest as a request of the same session, its route name and handler."""
    if not isinstance(spec, dict) or not all(isinstance(spec.get(k), str)
                                             for k in ("method", "url", "referenceId")):
        raise ApiError(400, "INVALID_INPUT",
                       "Each subrequest needs a method, a url and a referenceId")
    method, url = spec["method"].upper(), spec["url"]
    parts = urlsplit(url)
    # A Tooling composite runs Tooling resources only, a REST one REST resources only.
    if (_TOOLING in parts.path) != tooling:
        raise ApiError(400, "INVALID_INPUT", f"devorg serves {'Tooling' if tooling else 'REST'}"
                       f" resources only in this composite call: {method} {parts.path}")
    route, params, _ = router.match(method, parts.path)
    create = (tooling and not all_or_none and method == "POST" and route is not None
              and route.name == "tooling.sobject" and isinstance(spec.get("body"), dict))
    reads = _TOOLING_READ_ROUTES if tooling else _READ_ROUTES
    if "@{" in url or "@{" in json.dumps(spec.get("body")) or (not create and (
            "body" in spec or route is None or route.name not in reads or method != "GET")):
        served = ("GET of query, queryAll or sobjects, and creates of Tooling records"
                  " without allOrNone" if tooling else "GET of query, queryAll or sobjects")
        raise ApiError(400, "INVALID_INPUT", f"devorg serves composite subrequests ({served})"
                       f" without @{{reference}} substitutions only: {method} {parts.path}")
    content = json.dumps(spec["body"]).encode() if create else b""
    sub = Request(method=method, path=parts.path, query=parse_qs(parts.query),
                  headers=parent.headers, read_body=lambda: content, params=params,
                  session=parent.session, client=parent.client,
                  on_my_domain=parent.on_my_domain)
    return sub, route.name, route.handler
