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
