"""The preflight as an admin reads it: the detailed check results grouped into one line
per installation step, in the order of the installation guide, and a summary line.

`checks.py` says one thing per permission, object, field or PushTopic (`--verbose` and
`--json` keep them all); this module folds them into the guide's steps — "Ily fields:
0 of 40 present (Account 0/20, Lead 0/20)" with one fix — so a fresh org reads as a few
pending steps, not forty identical failures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ilyd.provision.checks import CheckResult, Mode, Status
from ilyd.provision.facts import OrgFacts

__all__ = ["STEP_ORDER", "StepResult", "group_steps", "summary_line"]

# The installation guide's order (README "Installing into an org", docs/install.md).
STREAMING = "Streaming API"
USER = "integration user"
PROFILE = "profile permissions"
OBJECTS = "object permissions"
CONNECT = "connect"
SOURCE = "enrichment source"
FIELDS = "Ily fields"
FLS = "field-level security"
TOPICS = "PushTopics"
CDC = "change data capture"  # ilyd/provision/cdc_check.py
DELIVERIES = "change event deliveries"
USERS_SEE = "users see the fields"
USAGE = "daily API usage"
SANDBOX = "sandbox refresh"
REFUSED = "fields refused on write"
SYNC = "complete sync"
STEP_ORDER = (STREAMING, USER, PROFILE, OBJECTS, CONNECT, SOURCE, FIELDS, FLS, TOPICS,
              CDC, DELIVERIES, USERS_SEE, USAGE, SANDBOX, REFUSED, SYNC)

# Worst first: what blocks, what ilyd will do, what costs something, what works.
_RANK = {Status.FAIL: 3, Status.TODO: 2, Status.WARN: 1, Status.PASS: 0}


@dataclass(frozen=True)
class StepResult:
    """One installation step: the worst of its items, one summary, one fix."""

    step: str
    status: Status
    summary: str
    items: tuple[CheckResult, ...]
    consequence: str | None = None
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON form, with every item."""
        return {"step": self.step, "status": str(self.status), "summary": self.summary,
                "consequence": self.consequence, "fix": self.fix,
                "items": [i.as_dict() for i in self.items]}


def _step_of(item: CheckResult, facts: OrgFacts | None) -> str:
    name = item.step
    if name in ("streaming api (org)", "permission Streaming API"):
        return STREAMING
    if name == "dedicated integration user":
        return USER
    if name.startswith("permission set "):
        return FLS
    if name.startswith("permission "):
        return PROFILE
    if name.startswith("object "):
        return OBJECTS
    if name == "api access":
        return CONNECT
    if name.startswith("field "):
        fact = facts.fields.get(name.removeprefix("field ")) if facts is not None else None
        # A field that is there but not writable is a matter of access, not presence.
        return FLS if fact is not None and fact.exists and not fact.writable else FIELDS
    if name.startswith("pushtopic "):
        return TOPICS
    if name in ("profiles reading the Ily fields", "page layouts"):
        return USERS_SEE
    if name == "daily api usage":
        return USAGE
    return name  # enrichment source, sandbox refresh, fields refused, complete sync


def _short(item: CheckResult) -> str:
    if item.step == "streaming api (org)":
        return "org setting"
    if item.step == "permission Streaming API":
        return "user permission"
    for prefix in ("permission set ", "permission ", "object ", "pushtopic ", "field "):
        if item.step.startswith(prefix):
            return item.step.removeprefix(prefix)
    return item.step


def _unique(values: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def _field_counts(facts: OrgFacts | None, items: Sequence[CheckResult]) -> str:
    names = [i.step.removeprefix("field ") for i in items if i.step.startswith("field ")]
    if facts is not None:
        names = list(facts.fields)
    per: dict[str, list[int]] = {}
    for name in names:
        fact = facts.fields.get(name) if facts is not None else None
        present = bool(fact is not None and (fact.exists or fact.readable))
        counts = per.setdefault(name.split(".")[0], [0, 0])
        counts[0] += present
        counts[1] += 1
    there = sum(c[0] for c in per.values())
    total = sum(c[1] for c in per.values())
    parts = ", ".join(f"{o} {c[0]}/{c[1]}" for o, c in per.items())
    writable = sum(f.writable for f in facts.fields.values()) if facts is not None else None
    text = f"{there} of {total} present ({parts})"
    if writable is not None and there and writable < total:
        text += f", {writable} writable"
    return text


def _pass_summary(step: str, items: Sequence[CheckResult]) -> str:
    if step == STREAMING:
        return "enabled for the org, granted to the integration user"
    if step == PROFILE:
        return ", ".join(_short(i) for i in items) + " granted"
    if step == OBJECTS:
        return ", ".join(f"{_short(i)} {i.summary.removesuffix(' granted')}" for i in items)
    if step == TOPICS:
        return ", ".join(_short(i) for i in items) + " present and as ilyd expects"
    if step == FLS:
        return next((i.summary for i in items if i.step.startswith("permission set ")),
                    "every Ily field writable")
    return "; ".join(i.summary for i in items)


def _problem_summary(step: str, items: Sequence[CheckResult]) -> str:
    shown = [i for i in items if i.status is not Status.PASS]
    if step == FLS:
        fields = [i for i in shown if i.step.startswith("field ")]
        parts = [f"permission set {_short(i)} {i.summary}" for i in shown
                 if not i.step.startswith("field ")]
        if fields:
            parts.append(f"{len(fields)} Ily field(s) exist but are not writable")
        return "; ".join(parts)
    if len(shown) == 1 and step in (USER, CONNECT, SOURCE, USERS_SEE, USAGE, SANDBOX, REFUSED,
                                    SYNC):
        return shown[0].summary
    return "; ".join(f"{_short(i)}: {i.summary}" for i in shown)


# The steps provisioning does when the org starts (auto_provision).
_PROVISIONED = (FIELDS, FLS, TOPICS)


def _fix(step: str, status: Status, shown: Sequence[CheckResult], auto_provision: bool
         ) -> str | None:
    fixes = _unique(i.fix for i in shown if i.status is status)
    if status is Status.TODO and auto_provision and step in _PROVISIONED:
        now = f"; to do it now: {'; '.join(fixes)}" if fixes else ""
        return "none needed: ilyd does it when the org starts (auto_provision = true)" + now
    return "; ".join(fixes) or None


def group_steps(results: Sequence[CheckResult], facts: OrgFacts | None,
                auto_provision: bool) -> tuple[StepResult, ...]:
    """The results as installation steps in the guide's order (unknown ones last)."""
    grouped: dict[str, list[CheckResult]] = {}
    for item in results:
        grouped.setdefault(_step_of(item, facts), []).append(item)
    order = {s: n for n, s in enumerate(STEP_ORDER)}
    steps = []
    for step in sorted(grouped, key=lambda s: order.get(s, len(order))):
        items = grouped[step]
        status = max((i.status for i in items), key=_RANK.__getitem__)
        if step == FIELDS:
            summary = _field_counts(facts, items)
        elif status is Status.PASS:
            summary = _pass_summary(step, items)
        else:
            summary = _problem_summary(step, items)
        worst = [i for i in items if i.status is status]
        consequence = None if status is Status.PASS else "; ".join(
            _unique(i.consequence for i in worst)) or None
        if consequence and status is Status.TODO and step in _PROVISIONED:
            consequence = f"until then, {consequence}"
        fix = None if status is Status.PASS else _fix(step, status, worst, auto_provision)
        steps.append(StepResult(step, status, summary, tuple(items), consequence, fix))
    return tuple(steps)


def summary_line(org: str, steps: Sequence[StepResult], mode: Mode | None) -> str:
    """What works now, then what ilyd will do, then what the admin must do."""
    done = [s.step for s in steps if s.status is Status.PASS]
    pending = [s.step for s in steps if s.status is Status.TODO]
    blocked = [s.step for s in steps if s.status is Status.FAIL]
    optional = [s.step for s in steps if s.status is Status.WARN]
    works = f"works now: {len(done)} of {len(steps)} steps"
    if mode is not None:
        works += f", mode {mode}"
    parts = [f"{org}: {works}"]
    if pending:
        parts.append(f"ilyd does when the org starts: {', '.join(pending)}")
    if blocked:
        parts.append(f"you must fix: {', '.join(blocked)} (FAIL lines)")
    else:
        parts.append("you must fix: nothing")
    if optional:
        parts.append(f"optional: {', '.join(optional)} (WARN lines)")
    return "; ".join(parts)
