"""Several Tooling records created in one Tooling Composite call (`POST /tooling/composite`).

https://developer.salesforce.com/docs/atlas.en-us.api_tooling.meta/api_tooling/tooling_resources_composite_composite.htm
"The entire request counts as a single call toward your API limits"; a call carries up
to 25 subrequests, and every Tooling sObject resource takes part. A cold start creates
some forty CustomFields: one call each was over half of its calls. `allOrNone` is false:
each record is created or refused on its own, as with a call each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ilyd.errors import SalesforceError
from ilyd.salesforce.rest import RestClient

__all__ = ["CREATES_PER_CALL", "create_many"]

# Salesforce allows 25 subrequests a call. A CustomField's create is a metadata change
# that takes a real org a second or more: ten keep one call well inside the client's
# read timeout (120 s) while a cold start's forty fields still take four calls, not forty.
CREATES_PER_CALL = 10


def create_many(rest: RestClient, sobject: str, bodies: Sequence[Mapping[str, Any]],
                ) -> list[str | SalesforceError]:
    """Create up to `CREATES_PER_CALL` Tooling records of `sobject` in one call: each new
    record's id, or the error Salesforce refused that record with. A refused call raises,
    as any request does; it is never retried (a retry could create records twice)."""
    if not 0 < len(bodies) <= CREATES_PER_CALL:
        raise ValueError(f"a Tooling composite call takes 1 to {CREATES_PER_CALL} creates,"
                         f" got {len(bodies)}")
    url = f"/services/data/v{rest.api_version}/tooling/sobjects/{sobject}"
    body = {"allOrNone": False, "compositeRequest": [
        {"method": "POST", "url": url, "referenceId": f"r{i}", "body": dict(record)}
        for i, record in enumerate(bodies)]}
    answer = rest.http.json("tooling_composite", "POST", "tooling/composite", json=body,
                            what=f"{len(bodies)} {sobject} creates in one Tooling call")
    results: list[str | SalesforceError] = []
    for item in answer["compositeResponse"]:
        created, status = item.get("body"), int(item.get("httpStatusCode", 500))
        if status < 300 and isinstance(created, Mapping) and created.get("id"):
            results.append(str(created["id"]))
            continue
        error = created[0] if isinstance(created, list) and created else {}
        results.append(SalesforceError(
            f"tooling create of {sobject}: {error.get('message', created)}",
            status=status, error_code=error.get("errorCode"),
            fields=tuple(error.get("fields") or ())))
    return results
