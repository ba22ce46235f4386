"""Whether a running org is doing its job, read from the detail its parts publish.

An org can run — its actors alive — and still enrich nothing: Salesforce refuses its
client secret, cannot be reached, fails its TLS handshake, or its changes cannot be
stored. The supervisor shows such an org as `degraded` (not `running`), with the
problem as its last error, so that `ilyd ctl status`, `ilyd_org_up` and IlydOrgDown all
say so. Partial permissions are not a problem here: an org that polls instead of
streaming, or writes only the fields it may, is doing its job.
"""

from __future__ import annotations

from collections.abc import Mapping

from ilyd.actors.messages import DetailValue


def problem(detail: Mapping[str, DetailValue]) -> str | None:
    """What keeps the org from enriching its changes, or None when nothing does."""
    if detail.get("needs_reauth"):
        reason = detail.get("reason") or detail.get("provision_error") or ""
        return f"needs re-authorisation: {reason}".rstrip(": ")
    if detail.get("not_provisioned"):  # before the stream's backoff on a missing channel
        return str(detail["not_provisioned"])
    if detail.get("connection") == "backoff":
        why = detail.get("connection_detail") or detail.get("connection_reason") or "backoff"
        return f"no change stream: {why}"
    if detail.get("poll_error"):
        return f"polling fails: {detail['poll_error']}"
    return None
