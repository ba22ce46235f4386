"""Scope: only records matching the org's `[org.scope]` condition are enriched.

The condition (the admin's SOQL, trusted like the rest of the config file; see
`ilyd.config.scope`) is checked where a query reads the records anyway, never with a
call of its own per record or event:

- real time (PushTopic, CDC, polling, reconciliation): the writer's batched read before
  a write (`FieldPolicy.check_batch`) carries `AND (condition)`; a record it does not
  return is out of scope and confirmed without a write;
- resync: the read of the records carries it (`ObjectPlan.where`).

When the org starts, each condition is validated by Salesforce itself, with a
`SELECT Id FROM object WHERE (condition) LIMIT 0` query; a condition Salesforce refuses
(HTTP 400: MALFORMED_QUERY, INVALID_FIELD…) puts the org in config_error with
Salesforce's message.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from ilyd.errors import SalesforceError, ScopeRefusedError
from ilyd.salesforce.rest import RestClient
from ilyd.salesforce.soql import identifier

__all__ = ["ScopeRefusedError", "scope_clause", "validate_scope"]

log = structlog.get_logger(__name__)


def scope_clause(scope: Iterable[tuple[str, str]], sobject: str) -> str | None:
    """The object's condition in parentheses, ready to AND into a WHERE, else None."""
    condition = dict(scope).get(sobject)
    return f"({condition})" if condition else None


def validate_scope(rest: RestClient, org: str, scope: Iterable[tuple[str, str]]) -> None:
    """Ask Salesforce to parse each condition (a LIMIT 0 query reads no record); raise
    ScopeRefusedError with Salesforce's words for the first one it refuses."""
    for sobject, condition in scope:
        # The condition is the admin's own SOQL (the config file is trusted input).
        query = f"SELECT Id FROM {identifier(sobject)} WHERE ({condition}) LIMIT 0"  # noqa: S608
        try:
            list(rest.query(query))
        except SalesforceError as exc:
            if exc.status != 400:
                raise
            log.warning("org_scope_refused", org=org, sobject=sobject,
                        error_code=exc.error_code, error=exc.message)
            # One line (the org's last error shows one): Salesforce's SOQL errors span
            # several, the query, a caret and the reason.
            said = " ".join(exc.message.split())
            raise ScopeRefusedError(
                f"[org.scope] {sobject}: Salesforce refused the condition"
                f" ({exc.error_code}): {said}") from exc
        log.info("org_scope_valid", org=org, sobject=sobject)
