"""Several SOQL queries in one Composite call (`POST /composite`): one API call for all.

https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_composite_post.htm
"The entire series of requests counts as a single call toward your API limits"; a call
carries up to 25 subrequests, of which up to 5 queries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ilyd.errors import SalesforceError
from ilyd.salesforce.rest import RecordIterator, RestClient, form_quote

__all__ = ["MAX_COMPOSITE_QUERIES", "form_quote", "query_many"]

MAX_COMPOSITE_QUERIES = 5


def query_many(rest: RestClient, queries: Sequence[str],
               ) -> list[list[dict[str, Any]] | SalesforceError]:
    """Run up to `MAX_COMPOSITE_QUERIES` SOQL queries in one Composite call: each query's
    records (further pages fetched as usual, a call each), or the error Salesforce
    answered that query with. A refused call raises, as any request does."""
    if not 0 < len(queries) <= MAX_COMPOSITE_QUERIES:
        raise ValueError(f"a Composite call takes 1 to {MAX_COMPOSITE_QUERIES} queries,"
                         f" got {len(queries)}")
    base = f"/services/data/v{rest.api_version}/query/?"
    body = {"allOrNone": False, "compositeRequest": [
        {"method": "GET", "url": base + "q=" + form_quote(q), "referenceId": f"q{i}"}
        for i, q in enumerate(queries)]}
    answer = rest.http.json("composite_query", "POST", "composite", json=body,
                            what=f"{len(queries)} queries in one composite call")
    results: list[list[dict[str, Any]] | SalesforceError] = []
    for item in answer["compositeResponse"]:
        page, status = item.get("body"), int(item.get("httpStatusCode", 500))
        if status >= 400 or not isinstance(page, Mapping):
            error = page[0] if isinstance(page, list) and page else {}
            results.append(SalesforceError(
                f"query on org {rest.org}: {error.get('message', page)}", status=status,
                error_code=error.get("errorCode"), fields=tuple(error.get("fields") or ())))
        elif page.get("done", True):
            results.append(list(page.get("records") or ()))
        else:  # further pages
            results.append(list(RecordIterator(rest.http, "query", page, {})))
    return results
