"""Every Prometheus metric ilyd exports, declared once, in one registry.

Conventions (https://prometheus.io/docs/practices/naming/): `ilyd_` prefix, base units,
`_total` on counters, per-org labels only on the short list of org-health series (and
switchable off with `[metrics] per_org = false`), no per-org histograms.
Add new metrics in the section of the capability they belong to.

Every label set the daemon can name in advance is created at 0 when the daemon, an org
or a provider starts (https://prometheus.io/docs/practices/instrumentation/#avoid-missing-metrics):
a series born with its first event leaves dashboards on "No data" until then, so an
operator cannot tell zero from broken, and rate() and increase() miss that first event.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, TypeVar

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.samples import Sample

from ilyd.enrich.fields import LAST_ENRICHED, fields_for

# `_created` series double the series count and nobody graphs them.
prometheus_client.disable_created_metrics()

REGISTRY = CollectorRegistry(auto_describe=True)

__all__ = ["PER_ORG", "REGISTRY", "Counter", "Gauge", "Histogram", "Info"]

_Metric = TypeVar("_Metric", Counter, Gauge, Histogram)


class OrgCounter(Counter):
    """A labelled Counter whose series named in advance (`at_zero`) read 0 until their
    first increment without an object each: a child is some 600 bytes, and an org's
    counters named in advance (38 protected fields, the resync stages…) came to ~35 KiB
    an org, tens of MiB at a thousand orgs. A series is a child once counted, as usual."""

    _zeros: set[tuple[str, ...]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._is_parent():
            self._zeros = set()

    def at_zero(self, *labelvalues: str) -> None:
        """Export the series of `labelvalues` (in label order) at 0 from now on."""
        with self._lock:
            self._zeros.add(tuple(str(v) for v in labelvalues))

    def _multi_samples(self) -> Iterable[Sample]:
        yield from super()._multi_samples()
        with self._lock:
            absent = [values for values in self._zeros if values not in self._metrics]
        for values in absent:
            yield Sample("_total", dict(zip(self._labelnames, values, strict=True)), 0.0,
                         None, None)

    def remove(self, *labelvalues: Any) -> None:
        super().remove(*labelvalues)
        with self._lock:
            self._zeros.discard(tuple(str(v) for v in labelvalues))

    def remove_by_labels(self, labels: dict[str, str]) -> None:
        super().remove_by_labels(labels)
        positions = [(self._labelnames.index(k), str(v)) for k, v in labels.items()]
        with self._lock:
            self._zeros = {values for values in self._zeros
                           if not all(values[i] == v for i, v in positions)}

# The metrics labelled by org, recorded as they are made (prometheus_client keeps label
# names private), so that `forget_org` can drop every series of an org.
PER_ORG: list[Counter | Gauge | Histogram] = []


def _per_org(metric: _Metric) -> _Metric:
    PER_ORG.append(metric)
    return metric


# --- Salesforce client (ilyd/salesforce: auth, rest, bulk) ---
SF_API_USAGE_RATIO = _per_org(Gauge(
    "ilyd_sf_api_usage_ratio",
    "Share of the org's daily API allowance used, from the last Sforce-Limit-Info header.",
    ["org"],
    registry=REGISTRY,
))
SF_API_BUDGET_RATIO = _per_org(Gauge(
    "ilyd_sf_api_budget_ratio",
    "Share of the org's daily API allowance ilyd may use (the org's api_budget_ratio), "
    "set when the org starts; compare with ilyd_sf_api_usage_ratio.",
    ["org"],
    registry=REGISTRY,
))
SF_REQUESTS = Counter(
    "ilyd_sf_requests_total",
    "HTTP requests sent to Salesforce, by operation (retries and token calls included).",
    ["op"],
    registry=REGISTRY,
)
SF_REQUEST_DURATION = Histogram(
    "ilyd_sf_request_duration_seconds",
    "Time from sending a request to Salesforce to its answer's headers, per attempt, by"
    " operation (the Bayeux long poll is not counted: it waits on purpose).",
    ["op"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0),
    registry=REGISTRY,
)
SF_REQUEST_FAILURES = Counter(
    "ilyd_sf_request_failures_total",
    "Salesforce requests that failed, by operation and reason "
    "(session, limit, client, server, connection, tls, reauth, busy).",
    ["op", "reason"],
    registry=REGISTRY,
)
SF_REQUEST_RETRIES = Counter(
    "ilyd_sf_request_retries_total",
    "Salesforce requests sent again after a transient failure or a refreshed session.",
    ["op"],
    registry=REGISTRY,
)

# --- enrichment providers and their cache ---
PROVIDER_REQUESTS = Counter(
    "ilyd_provider_requests_total",
    "Requests sent to an enrichment provider (HTTP calls incl. retries, DNS domain lookups, "
    "dataset lookups).",
    ["provider"],
    registry=REGISTRY,
)
PROVIDER_FAILURES = Counter(
    "ilyd_provider_failures_total",
    "Provider requests that failed, by reason (timeout, connection, server, rate_limited, "
    "queued, auth, rejected, bad_response, servfail, dns_error, dataset_unreadable).",
    ["provider", "reason"],
    registry=REGISTRY,
)
PROVIDER_REQUEST_DURATION = Histogram(
    "ilyd_provider_request_duration_seconds",
    "Time one provider request took, failures included.",
    ["provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
CACHE_HITS = Counter(
    "ilyd_cache_hits_total",
    "Provider lookups answered from the cache (or by joining a lookup already in flight).",
    registry=REGISTRY,
)
CACHE_MISSES = Counter(
    "ilyd_cache_misses_total",
    "Provider lookups the cache could not answer, so the provider was asked.",
    registry=REGISTRY,
)

# --- streaming: Bayeux subscriber and replay ---
STREAMING_HANDSHAKES = Counter(
    "ilyd_streaming_handshakes_total",
    "Bayeux handshakes sent, by reason (initial, unknown_client, auth, advice, network, "
    "server, limit, not_enabled, protocol, subscribe, redeliver).",
    ["reason"],
    registry=REGISTRY,
)
EVENTS_RECEIVED = _per_org(OrgCounter(
    "ilyd_events_received_total",
    "Streaming events received from Salesforce (before de-duplication).",
    ["org"],
    registry=REGISTRY,
))
LAST_EVENT_TIMESTAMP = _per_org(Gauge(
    "ilyd_last_event_timestamp_seconds",
    "Unix time the org's last streaming event was received (alert on silence).",
    ["org"],
    registry=REGISTRY,
))
REPLAY_FALLBACKS = _per_org(OrgCounter(
    "ilyd_replay_fallbacks_total",
    "Stored replay ids Salesforce no longer held: resubscribed with -2 and caught up by SOQL.",
    ["org"],
    registry=REGISTRY,
))
RECONCILED_RECORDS = _per_org(OrgCounter(
    "ilyd_reconciled_records_total",
    "Records the reconciliation sweep found changed but not enriched (no event reached "
    "ilyd for them: a silent stall or a skipped replay) and put in the inbox.",
    ["org", "sobject"],
    registry=REGISTRY,
))

# --- daemon: build, supervisor, config reload, control socket ---
BUILD_INFO = Info(
    "ilyd_build",
    "Version of the running ilyd (the value is always 1).",
    registry=REGISTRY,
)
ORGS = Gauge(
    "ilyd_orgs",
    "Configured orgs by supervisor state (starting, running, degraded, backoff, fatal, "
    "paused, stopped, config_error).",
    ["state"],
    registry=REGISTRY,
)
ORG_UP = _per_org(Gauge(
    "ilyd_org_up",
    "1 while the org is running and doing its job, else 0 (degraded included).",
    ["org"],
    registry=REGISTRY,
))
# One series per org, not one per org and state: the child of the state left is removed
# (set_org_state), so 1000 orgs cost 1000 series rather than 7000.
ORG_STATE = _per_org(Gauge(
    "ilyd_org_state",
    "Always 1, labelled with the org's current supervisor state (starting, running, "
    "degraded, backoff, fatal, paused, stopped, config_error); one series per org.",
    ["org", "state"],
    registry=REGISTRY,
))
ORG_RESTARTS = _per_org(OrgCounter(
    "ilyd_org_restarts_total",
    "Times the supervisor started an org again (after a failure, a restart or a reload).",
    ["org"],
    registry=REGISTRY,
))
ORG_NEEDS_REAUTH = _per_org(Gauge(
    "ilyd_org_needs_reauth",
    "1 while the org's status says it needs re-authorisation (Salesforce refused the token "
    "grant, or the sandbox was refreshed), else 0; cleared when the org is started again.",
    ["org"],
    registry=REGISTRY,
))
ORG_TRANSITIONS = Counter(
    "ilyd_org_transitions_total",
    "Org state changes, by the state entered.",
    ["state"],
    registry=REGISTRY,
)
CONFIG_LAST_RELOAD_SUCCESSFUL = Gauge(
    "ilyd_config_last_reload_successful",
    "1 if the last configuration (re)load succeeded, 0 if it was refused.",
    registry=REGISTRY,
)
CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP = Gauge(
    "ilyd_config_last_reload_success_timestamp_seconds",
    "Unix time of the last successful configuration (re)load.",
    registry=REGISTRY,
)
CONFIG_GENERATION = Gauge(
    "ilyd_config_generation",
    "Configuration generation number, bumped on each successful reload.",
    registry=REGISTRY,
)
CONTROL_REQUESTS = Counter(
    "ilyd_control_requests_total",
    "Control socket requests, by verb (unknown verbs counted as 'unknown').",
    ["verb"],
    registry=REGISTRY,
)
CONTROL_REQUEST_FAILURES = Counter(
    "ilyd_control_request_failures_total",
    "Control socket requests answered with an error, by error code.",
    ["code"],
    registry=REGISTRY,
)

# --- real-time enrichment pipeline: enricher, writer, poller ---
RECORDS_ENRICHED = _per_org(OrgCounter(
    "ilyd_records_enriched_total",
    "Records whose Ily values Salesforce confirmed (written by the real-time pipeline).",
    ["org"],
    registry=REGISTRY,
))
WRITEBACK_FAILURES = _per_org(OrgCounter(
    "ilyd_writeback_failures_total",
    "Per-record write-back failures Salesforce reported (retried or dropped).",
    ["org"],
    registry=REGISTRY,
))
WRITER_WINDOW_SECONDS = _per_org(Gauge(
    "ilyd_writer_window_seconds",
    "How long a record queued now may wait for the writer's call: writer_window, wider (up "
    "to writer_window_max) while the writer's projected daily calls would pass api_share.",
    ["org"],
    registry=REGISTRY,
))
API_PROJECTED_DAILY_SHARE = _per_org(Gauge(
    "ilyd_api_projected_daily_share",
    "The real-time writer's recent call rate held for a day, as a share of the org's daily "
    "API allowance; the window widens to keep it within api_share.",
    ["org"],
    registry=REGISTRY,
))
WRITES_SKIPPED_UNCHANGED = Counter(
    "ilyd_writes_skipped_unchanged_total",
    "Writes skipped because the record's inputs and computed values were unchanged.",
    registry=REGISTRY,
)
FIELDS_PROTECTED = _per_org(OrgCounter(
    "ilyd_fields_protected_total",
    "Ily values not written because a person changed the field since ilyd wrote it"
    " (overwrite policy unless_edited).",
    ["org", "sobject", "field"],
    registry=REGISTRY,
))
RECORDS_DROPPED = Counter(
    "ilyd_records_dropped_total",
    "Records given up on, by reason (deleted, not_found, converted_lead, or gave_up: a "
    "write kept failing).",
    ["reason"],
    registry=REGISTRY,
)
INBOX_RECORDS = _per_org(Gauge(
    "ilyd_inbox_records",
    "Records waiting in the org's durable inbox to be enriched and written.",
    ["org"],
    registry=REGISTRY,
))
EVENT_TO_WRITE_SECONDS = Histogram(
    "ilyd_event_to_write_seconds",
    "Time from a change reaching the inbox to Salesforce confirming its Ily values.",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0),
    registry=REGISTRY,
)
EVENT_AGE_SECONDS = Histogram(
    "ilyd_event_age_seconds",
    "Age of a change event when it is stored in the inbox: from the change in Salesforce"
    " (PushTopic createdDate, CDC commitTimestamp) to the store, clock skew between"
    " Salesforce and this host included.",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0),
    registry=REGISTRY,
)
EVENTS_SKIPPED = _per_org(OrgCounter(
    "ilyd_events_skipped_total",
    "Change events acknowledged without any API call, by reason (own_write: ilyd's own "
    "write; no_input_change: an update of fields ilyd does not read).",
    ["org", "reason"],
    registry=REGISTRY,
))
ORG_SOURCE = _per_org(Gauge(
    "ilyd_org_source",
    "1 for where the org's changes come from (cdc, pushtopic, polling), 0 for the others.",
    ["org", "source"],
    registry=REGISTRY,
))
POLLS = Counter(
    "ilyd_polls_total",
    "SOQL polls for changed records (orgs in polling mode).",
    registry=REGISTRY,
)


# --- provisioning: checks, fields, permission set, PushTopics, mode ---
ORG_MODE = _per_org(Gauge(
    "ilyd_org_mode",
    "1 for the org's current mode (streaming, polling, partial), 0 for the others.",
    ["org", "mode"],
    registry=REGISTRY,
))
PROVISION_ACTIONS = Counter(
    "ilyd_provision_actions_total",
    "Changes provisioning made in orgs, by action (create_field, create_permission_set, "
    "grant_field, assign_permission_set, create_push_topic, update_push_topic; "
    "grant_profile_field from ilyd ctl grant; layout_fields from ilyd ctl layout).",
    ["action"],
    registry=REGISTRY,
)
PROVISION_ACTION_FAILURES = Counter(
    "ilyd_provision_action_failures_total",
    "Provisioning actions Salesforce refused, by action.",
    ["action"],
    registry=REGISTRY,
)
SANDBOX_REFRESHES = Counter(
    "ilyd_sandbox_refreshes_total",
    "Org id changes detected (a refreshed sandbox): replay ids dropped, re-auth needed.",
    registry=REGISTRY,
)

# --- complete database sync: ilyd ctl resync ---
RESYNC_RECORDS = _per_org(OrgCounter(
    "ilyd_resync_records_total",
    "Records a resync handled, by stage (read, enriched, changed, written, failed, skipped).",
    ["org", "stage"],
    registry=REGISTRY,
))
RESYNC_RUNNING = _per_org(Gauge(
    "ilyd_resync_running",
    "1 while a resync of the org runs (paused for the API budget included), else 0.",
    ["org"],
    registry=REGISTRY,
))

# --- scheduled refresh: [enrich] refresh_after ---
REFRESH_BACKLOG = _per_org(Gauge(
    "ilyd_refresh_backlog_records",
    "Records whose Ily Last Enriched is older than refresh_after, as last counted (then "
    "less what the running refresh wrote).",
    ["org"],
    registry=REGISTRY,
))
REFRESH_RECORDS = _per_org(OrgCounter(
    "ilyd_refresh_records_total",
    "Records the scheduled refresh enriched again and wrote back (Last Enriched at least).",
    ["org"],
    registry=REGISTRY,
))
REFRESH_CHANGED = _per_org(OrgCounter(
    "ilyd_refresh_changed_records_total",
    "Records the scheduled refresh found with values that changed (only those are written, "
    "with Last Enriched).",
    ["org"],
    registry=REGISTRY,
))
REFRESH_NEXT = _per_org(Gauge(
    "ilyd_refresh_next_run_timestamp_seconds",
    "When the refresh next counts its backlog (and runs when there is one), Unix time.",
    ["org"],
    registry=REGISTRY,
))

# --- operations: the process itself, for the dashboards ---
# REGISTRY is private, so the default registry's collectors are not in it; operators
# expect process_* (CPU, RSS, fds), python_info and python_gc_* next to ours, as every
# Python exporter serves them.
prometheus_client.ProcessCollector(registry=REGISTRY)
prometheus_client.PlatformCollector(registry=REGISTRY)
prometheus_client.GCCollector(registry=REGISTRY)
THREADS = Gauge(
    "ilyd_threads",
    "Python threads alive in the daemon: an actor per org and the supervisor, plus the shared"
    " Bayeux loop, lookup pool and timers, and a thread per running resync or refresh.",
    registry=REGISTRY,
)
THREADS.set_function(threading.active_count)

# --- worker processes (the front process reports them; one process is worker 0) ---
WORKER_UP = Gauge(
    "ilyd_worker_up",
    "1 while the worker process answers the front, else 0 (starting, exited, restarting); "
    "a daemon of one process reports itself as worker 0, up while it runs.",
    ["worker"],
    registry=REGISTRY,
)
WORKER_RESTARTS = Counter(
    "ilyd_worker_restarts_total",
    "Worker processes started again after they exited or stopped answering.",
    ["worker"],
    registry=REGISTRY,
)


def forget_org(org: str) -> None:
    """Drop every per-org series of `org` (called when an org leaves the config)."""
    for metric in PER_ORG:
        metric.remove_by_labels({"org": org})
    _ORG_STATES.pop(org, None)


# org -> the state its ilyd_org_state child carries (the supervisor's thread writes it).
_ORG_STATES: dict[str, str] = {}


def set_org_state(org: str, state: str) -> None:
    """Export `org`'s supervisor state as `ilyd_org_state{org, state} 1`, the only child.

    The new child is set before the others of the org are removed, so a scrape in between
    sees the org in two states for an instant rather than in none.
    """
    state = str(state)
    ORG_STATE.labels(org=org, state=state).set(1)
    previous = _ORG_STATES.get(org)
    _ORG_STATES[org] = state
    if previous is not None and previous != state:
        ORG_STATE.remove(org, previous)


# Values of ilyd_resync_records_total's `stage` (ilyd.resync.progress.STAGES, which imports
# this module; a test keeps the two equal).
RESYNC_STAGES = ("read", "enriched", "changed", "written", "failed", "skipped")

# Values of ilyd_reconciled_records_total's `sobject`: the objects ilyd enriches
# (ilyd.config's SUPPORTED_OBJECTS; a test keeps the two equal).
RECONCILE_OBJECTS = ("Account", "Lead")


# (sobject, Ily field) pairs a person's edit may protect: all but Last Enriched.
_PROTECTABLE = tuple((sobject, ily.api_name) for sobject in RECONCILE_OBJECTS
                     for ily in fields_for(sobject) if ily is not LAST_ENRICHED)


def prepare_org(org: str) -> None:
    """Create `org`'s per-org counter children, and the gauges whose 0 is true, at 0.

    Called when the supervisor first sees the org. A labelled child otherwise appears on
    its first increment, and increase() needs an earlier sample to count that first event
    (a first replay fallback would go unnoticed). Gauges whose 0 would be a false reading
    (last event time, API usage, inbox depth, mode) appear with their first real value.
    `forget_org` removes them all again.
    """
    for counter in (EVENTS_RECEIVED, REPLAY_FALLBACKS, ORG_RESTARTS, RECORDS_ENRICHED,
                    WRITEBACK_FAILURES, REFRESH_RECORDS, REFRESH_CHANGED):
        counter.at_zero(org)
    for stage in RESYNC_STAGES:
        RESYNC_RECORDS.at_zero(org, stage)
    for sobject in RECONCILE_OBJECTS:
        RECONCILED_RECORDS.at_zero(org, sobject)
    for reason in ("own_write", "no_input_change"):
        EVENTS_SKIPPED.at_zero(org, reason)
    for gauge in (ORG_UP, ORG_NEEDS_REAUTH, RESYNC_RUNNING):
        gauge.labels(org=org)
    # Every Ily field but Last Enriched (always written) may be protected: ~38 series.
    for sobject, field in _PROTECTABLE:
        FIELDS_PROTECTED.at_zero(org, sobject, field)


# Values of ilyd_sf_request_failures_total's `reason`: any request may fail on TLS or the
# connection; an answered one is refused as session, limit, client or server
# (ilyd.salesforce.http), a token request as reauth, busy or client (ilyd.salesforce.auth).
SF_FAILURE_REASONS = ("tls", "connection", "session", "limit", "client", "server")
TOKEN_FAILURE_REASONS = ("tls", "connection", "reauth", "busy", "client")
# The operations every running org sends all along: sign-in, the start-up checks, the
# real-time pipeline's reads and writes and the limits probe. The occasional ones
# (provisioning's writes, a resync's Bulk API jobs) appear with their first request:
# every operation times every reason would be some 200 series of zeros.
STEADY_SF_OPS = ("describe", "query", "tooling_query", "limits", "collections_update")
# Values of ilyd_streaming_handshakes_total's `reason`: the first handshake, the server's
# advice, a redelivery, and each ilyd.salesforce.bayeux_messages.FailureKind (a test keeps
# them equal).
HANDSHAKE_REASONS = ("initial", "advice", "redeliver", "unknown_client", "auth", "limit",
                     "not_enabled", "replay_invalid", "subscribe", "server", "network",
                     "protocol", "unstored")
# Values of ilyd_records_dropped_total's `reason`: ilyd.pipeline.outcomes.DROP_REASONS'
# and the writer's gave_up (a test keeps them equal).
DROP_REASONS = ("deleted", "not_found", "converted_lead", "gave_up")


def prepare_daemon(*, one_process: bool) -> None:
    """Create the daemon-wide series whose label values are known at start, at 0.

    `one_process`: the daemon runs its orgs itself (no worker processes), so it reports
    itself as worker 0, up while it runs.
    """
    for op in ("token", *STEADY_SF_OPS):
        SF_REQUESTS.labels(op=op)
        SF_REQUEST_RETRIES.labels(op=op)
        for reason in TOKEN_FAILURE_REASONS if op == "token" else SF_FAILURE_REASONS:
            SF_REQUEST_FAILURES.labels(op=op, reason=reason)
    for reason in HANDSHAKE_REASONS:
        STREAMING_HANDSHAKES.labels(reason=reason)
    for reason in DROP_REASONS:
        RECORDS_DROPPED.labels(reason=reason)
    if one_process:
        WORKER_UP.labels(worker="0").set(1)
        WORKER_RESTARTS.labels(worker="0")


def prepare_provider(provider: str, failure_reasons: tuple[str, ...]) -> None:
    """Create `provider`'s request, latency and failure series at 0 (when it is built)."""
    PROVIDER_REQUESTS.labels(provider)
    PROVIDER_REQUEST_DURATION.labels(provider)
    for reason in failure_reasons:
        PROVIDER_FAILURES.labels(provider, reason)
