"""`Provisioner`: check, plan, provision and grant for one org — the plain class the
provisioner actor and the commands share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from ilyd import metrics
from ilyd.errors import ProvisioningError, SalesforceError
from ilyd.provision.cdc_check import cdc_checks
from ilyd.provision.checks import (
    CheckResult,
    Context,
    Mode,
    SandboxRefresh,
    Status,
    api_failure,
    decide_mode,
    run_checks,
)
from ilyd.provision.facts import OrgFacts, gather
from ilyd.provision.grant import GrantReport, grant_profiles
from ilyd.provision.identity import OrgIdentityStore
from ilyd.provision.layout import LayoutReport, layout_check, run_layouts
from ilyd.provision.plan import Action, ActionKind, Plan, apply, make_plan
from ilyd.provision.steps import StepResult, group_steps, summary_line
from ilyd.provision.sync import sync_check
from ilyd.provision.unwritable import unwritable_check
from ilyd.resync.checkpoint import ResyncStore
from ilyd.salesforce.metadata import MetadataClient
from ilyd.salesforce.rest import RestClient
from ilyd.store.writes import WriteStateStore

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class CheckReport:
    """Every check result of one org, and the mode those facts give."""

    org: str
    results: tuple[CheckResult, ...]
    mode: Mode | None  # None when the org could not be read at all
    # The results as the installation guide's steps (what `ilyd check` prints).
    steps: tuple[StepResult, ...] = ()

    @property
    def ok(self) -> bool:
        """Nothing is blocked: no FAIL (`ilyd check` and `ilyd ctl check` exit 0)."""
        return all(r.status is not Status.FAIL for r in self.results)

    def counts(self) -> dict[str, int]:
        """Results per status."""
        return {s.value: sum(r.status is s for r in self.results) for s in Status}

    def as_dict(self) -> dict[str, Any]:
        """JSON form (`--json`, the control protocol)."""
        return {"org": self.org, "ok": self.ok, "mode": self.mode and str(self.mode),
                "summary": summary_line(self.org, self.steps, self.mode),
                "steps": [s.as_dict() for s in self.steps],
                "counts": self.counts(), "results": [r.as_dict() for r in self.results]}


@dataclass(frozen=True)
class ProvisionReport:
    """A provisioning run: the plan, what was done (or would be, with --plan), the mode."""

    org: str
    plan: Plan
    applied: bool
    done: tuple[Action, ...]
    failed: tuple[tuple[Action, str], ...]
    mode: Mode
    fields_writable: int
    fields_wanted: int
    refresh: SandboxRefresh | None = None

    @property
    def sandbox_refreshed(self) -> bool:
        """The org id changed and `ilyd connect` has not confirmed the new org yet."""
        return self.refresh is not None and not self.refresh.acknowledged

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "org": self.org, "applied": self.applied, "mode": str(self.mode),
            "plan": [a.as_dict() for a in self.plan.actions],
            "skipped": list(self.plan.skipped),
            "done": [a.as_dict() for a in self.done],
            "failed": [{**a.as_dict(), "error": e} for a, e in self.failed],
            "fields": f"{self.fields_writable}/{self.fields_wanted}",
            "sandbox_refreshed": self.sandbox_refreshed,
        }


class Provisioner:
    """Installs ilyd into one org through `rest`, as far as the user's permissions allow."""

    def __init__(
        self,
        org: str,
        rest: RestClient,
        *,
        objects: tuple[str, ...],
        api_version: str,
        api_budget_ratio: float = 0.5,
        poll_interval: float = 30.0,
        identities: OrgIdentityStore | None = None,
        writes: WriteStateStore | None = None,
        auto_provision: bool = False,
        auto_layout: bool = False,
        source: CheckResult | None = None,
        resyncs: ResyncStore | None = None,
        streaming_source: str = "auto",
        on_facts: Callable[[OrgFacts], None] | None = None,
    ) -> None:
        self.org = org
        # Told every snapshot read, so what a run learned outlives the run (warm starts).
        self.on_facts = on_facts
        # The org's `source` (auto, cdc, pushtopic, polling): check lines and plan steps.
        self.streaming_source = streaming_source
        # Whether ilyd creates what is missing when the org starts (pending, not blocked).
        self.auto_provision = auto_provision
        # Whether provisioning also adds the Ily section to the page layouts.
        self.auto_layout = auto_layout
        # The enrichment source line: from the org's config, which only the caller has.
        self.source = source
        # The complete sync's checkpoint: the last step's line.
        self.resyncs = resyncs
        # The writer's record of fields Salesforce refused: `check` shows them.
        self.writes = writes
        self.rest = rest
        self.objects = objects
        self.api_version = api_version
        self.api_budget_ratio = api_budget_ratio
        self.poll_interval = poll_interval
        self.identities = identities

    def _context(self, refresh: SandboxRefresh | None) -> Context:
        return Context(self.org, self.objects, self.api_budget_ratio, self.poll_interval,
                       refresh, self.auto_provision, self.streaming_source)

    def facts(self, *, before: OrgFacts | None = None, cdc_changed: bool = False) -> OrgFacts:
        """The org as it is now (raises SalesforceError if it cannot be read); `before` and
        `cdc_changed` as `gather` takes them, for the read after a run's changes."""
        facts = gather(self.rest, self.objects, before=before, cdc_changed=cdc_changed)
        if self.on_facts is not None:
            self.on_facts(facts)
        return facts

    def check(self) -> CheckReport:
        """The preflight; changes nothing (not even the stored org id)."""
        source = [self.source] if self.source is not None else []
        try:
            facts = self.facts()
        except SalesforceError as exc:
            failed = (*api_failure(str(exc), self._context(None), exc.error_code), *source)
            return CheckReport(self.org, failed, None,
                               group_steps(failed, None, self.auto_provision))
        refresh = (self.identities.compare(self.org, facts.org_id)
                   if self.identities is not None else None)
        context = self._context(refresh)
        results = run_checks(facts, context) + cdc_checks(facts, context) + source
        results.append(layout_check(MetadataClient(self.rest.http), facts, self.org,
                                    self.objects))
        if self.writes is not None:
            refused = unwritable_check(self.org, self.writes.unwritable(self.org))
            results += [refused] if refused is not None else []
        if self.resyncs is not None:
            results.append(sync_check(self.org, self.resyncs.run(self.org)))
        return CheckReport(self.org, tuple(results), decide_mode(facts, self.objects),
                           group_steps(results, facts, self.auto_provision))

    def plan(self) -> Plan:
        """What `provision` would do now."""
        return make_plan(self.facts(), self.objects, self.api_version, self.org,
                         self.streaming_source)

    def provision(self, *, dry_run: bool = False,
                  progress: Callable[[Action], None] | None = None) -> ProvisionReport:
        """Create what is missing and correct what differs, then decide the mode.

        Also records the org id (a change means a refreshed sandbox: replay ids are
        dropped). With `dry_run` nothing is written, in the org or in the state DB.
        """
        facts = self.facts()
        refresh = None
        if self.identities is not None:
            refresh = (self.identities.compare(self.org, facts.org_id) if dry_run
                       else self.identities.observe(self.org, facts.org_id))
        plan = make_plan(facts, self.objects, self.api_version, self.org,
                         self.streaming_source)
        done: tuple[Action, ...] = ()
        failed: tuple[tuple[Action, str], ...] = ()
        if not dry_run and not plan.empty:
            result = apply(self.rest, facts, plan, self.api_version, progress)
            done, failed = tuple(result.done), tuple(result.failed)
            facts = self.facts(before=facts, cdc_changed=any(
                a.kind is ActionKind.SELECT_CDC_ENTITY for a in done))
        if not dry_run and self.auto_layout:
            self._auto_layout(facts)
        mode = decide_mode(facts, self.objects)
        writable = sum(f.writable for f in facts.fields.values())
        if not dry_run:
            set_mode_metric(self.org, mode)
            log.info("provisioning_finished", mode=str(mode), done=len(done),
                     failed=len(failed), skipped=len(plan.skipped),
                     fields=f"{writable}/{len(facts.fields)}")
        return ProvisionReport(self.org, plan, not dry_run, done, failed, mode, writable,
                               len(facts.fields), refresh)

    def _auto_layout(self, facts: OrgFacts) -> None:
        # Page layouts are the admin's: a refusal is logged and `ilyd check` shows it,
        # the org runs on.
        try:
            run_layouts(MetadataClient(self.rest.http), facts, self.org, self.objects)
        except (SalesforceError, ProvisioningError) as exc:
            log.warning("auto_layout_failed", org=self.org, error=str(exc).splitlines()[0])

    def layouts(self, *, dry_run: bool = False, objects: Sequence[str] = (),
                layouts: Sequence[str] = ()) -> LayoutReport:
        """Add the granted Ily fields to page layouts (`dry_run`: only the plan)."""
        return run_layouts(MetadataClient(self.rest.http), self.facts(), self.org,
                           self.objects, dry_run=dry_run, only_objects=objects,
                           only_layouts=layouts)

    def grant(self, profiles: Sequence[str], *, edit: bool = False) -> GrantReport:
        """Read (or Read/Edit) on the existing Ily fields for whole profiles."""
        facts = self.facts()
        existing = [n for n, f in facts.fields.items() if f.exists]
        return grant_profiles(self.rest, profiles, existing, edit=edit)

    def writable_fields(self) -> dict[str, tuple[str, ...]]:
        """Per object, the Ily fields the integration user can write (for partial mode)."""
        facts = self.facts()
        out: dict[str, list[str]] = {o: [] for o in self.objects}
        for full, f in facts.fields.items():
            if f.writable:
                sobject, name = full.split(".")
                out[sobject].append(name)
        return {k: tuple(v) for k, v in out.items()}


def set_mode_metric(org: str, mode: Mode) -> None:
    """ilyd_org_mode{org, mode}: 1 for the current mode, 0 for the others."""
    for candidate in Mode:
        metrics.ORG_MODE.labels(org=org, mode=str(candidate)).set(1 if candidate is mode else 0)
