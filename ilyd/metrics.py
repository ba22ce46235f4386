"""Every Prometheus metric ilyd exports, declared once, in one registry.

Conventions (../shared/reference/operations.md §1): `ilyd_` prefix, base units,
`_total` on counters, per-org labels only on the short list of org-health series (and
switchable off with `[metrics] per_org = false`), no per-org histograms.
Add new metrics in the section of the capability they belong to.
"""

from __future__ import annotations

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

# `_created` series double the series count and nobody graphs them.
prometheus_client.disable_created_metrics()

REGISTRY = CollectorRegistry(auto_describe=True)

__all__ = ["REGISTRY", "Counter", "Gauge", "Histogram", "Info"]

# --- Salesforce client (ilyd/salesforce: auth, rest, bulk) ---
SF_API_USAGE_RATIO = Gauge(
    "ilyd_sf_api_usage_ratio",
    "Share of the org's daily API allowance used, from the last Sforce-Limit-Info header.",
    ["org"],
    registry=REGISTRY,
)
SF_REQUESTS = Counter(
    "ilyd_sf_requests_total",
    "HTTP requests sent to Salesforce, by operation (retries and token calls included).",
    ["op"],
    registry=REGISTRY,
)
SF_REQUEST_FAILURES = Counter(
    "ilyd_sf_request_failures_total",
    "Salesforce requests that failed, by operation and reason "
    "(session, limit, client, server, connection, reauth).",
    ["op", "reason"],
    registry=REGISTRY,
)
SF_REQUEST_RETRIES = Counter(
    "ilyd_sf_request_retries_total",
    "Salesforce requests sent again after a transient failure or a refreshed session.",
    ["op"],
    registry=REGISTRY,
)
