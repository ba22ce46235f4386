"""The preflight lines for Change Data Capture: whether the objects are selected for change
events (and what `source` makes of it), and the change events delivered today against the
org's allocation, which high-volume platform events share
(https://developer.salesforce.com/docs/platform/change-data-capture/guide/cdc-considerations.html)."""

from __future__ import annotations

from ilyd.provision.checks import CheckResult, Context, Status
from ilyd.provision.facts import OrgFacts
from ilyd.provision.spec import CUSTOMIZE_APPLICATION, STREAMING_API

__all__ = ["cdc_checks"]

STEP = "change data capture"
DELIVERIES = "change event deliveries"
# Entities an org may select without the Change Data Capture add-on licence (Salesforce
# does not report an org's own allowance through the API).
ALLOWANCE = 5


def _listed(objects: list[str]) -> str:
    return ", ".join(objects) or "none"


def _streams(facts: OrgFacts) -> bool:
    return bool(facts.streaming_enabled) and facts.has(STREAMING_API)


def _selection(facts: OrgFacts, ctx: Context) -> CheckResult:
    selected = facts.cdc_selected
    if ctx.source in ("auto", "cdc") and not _streams(facts):
        return CheckResult(STEP, Status.WARN, "not usable while streaming is unavailable",
                           f"changes arrive by SOQL polling every {ctx.poll_interval:g} s",
                           "see the Streaming API step")
    if selected is None:
        why = facts.unknown.get("change_data_capture", "not readable")
        if ctx.source not in ("auto", "cdc"):
            return CheckResult(STEP, Status.PASS, f"not used (source = {ctx.source})")
        return CheckResult(STEP, Status.WARN, f"cannot read the selection ({why})",
                           "ilyd streams PushTopics", "grant View Setup and Configuration")
    chosen = [o for o in ctx.objects if o in selected]
    missing = [o for o in ctx.objects if o not in selected]
    allowance = f"{len(selected)}/{ALLOWANCE} entities of the org selected"
    if ctx.source not in ("auto", "cdc"):
        return CheckResult(STEP, Status.PASS, f"not used (source = {ctx.source}); {allowance}")
    if not missing:
        return CheckResult(STEP, Status.PASS,
                           f"{_listed(chosen)} selected: change events ({allowance})")
    if ctx.source == "auto":
        return CheckResult(STEP, Status.PASS,
                           f"{_listed(missing)} not selected: PushTopics (auto selects none;"
                           f" {allowance})")
    if facts.has(CUSTOMIZE_APPLICATION):
        return CheckResult(STEP, Status.TODO,
                           f"{_listed(missing)} not selected yet ({allowance})",
                           fix=f"ilyd selects them when the org starts (ilyd ctl provision"
                               f" {ctx.org} --plan shows it); past the allowance they stream"
                               " PushTopics")
    return CheckResult(STEP, Status.WARN, f"{_listed(missing)} not selected ({allowance})",
                       f"{_listed(missing)} stream PushTopics (ilyd may not select entities"
                       " without Customize Application)",
                       "grant Customize Application, or Setup > Integrations > Change Data"
                       f" Capture: select {_listed(missing)}")


def _deliveries(facts: OrgFacts, ctx: Context) -> CheckResult | None:
    if ctx.source not in ("auto", "cdc") or not _streams(facts):
        return None
    if facts.cdc_deliveries is None:
        return CheckResult(DELIVERIES, Status.WARN, "unknown (/limits not readable)",
                           "a spent allocation would go unnoticed until events stop",
                           "grant View Setup and Configuration")
    used, maximum = facts.cdc_deliveries
    summary = f"{used:,} of {maximum:,} today (shared with high-volume platform events)"
    if maximum and used >= 0.9 * maximum:
        return CheckResult(DELIVERIES, Status.WARN, summary,
                           "change events stop reaching subscribers at the allocation (they"
                           " stay retained 72 h)",
                           "the Change Data Capture add-on licence, or fewer subscribers")
    return CheckResult(DELIVERIES, Status.PASS, summary)


def cdc_checks(facts: OrgFacts, ctx: Context) -> list[CheckResult]:
    """The selection line, and the deliveries line when change events may be used."""
    deliveries = _deliveries(facts, ctx)
    return [_selection(facts, ctx), *([deliveries] if deliveries else [])]
