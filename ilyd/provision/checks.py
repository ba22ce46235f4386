"""The preflight: one result per installation step, PASS / WARN / FAIL, with the
consequence and the exact fix, and the org's mode decided from the same facts.

Pure functions of `OrgFacts` (plus the org's config name and budget), so `ilyd check`,
`ilyd ctl check` and the provisioner all say the same thing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from ilyd.provision.facts import INTERACTIVE_WINDOW_DAYS, OrgFacts
from ilyd.provision.spec import (
    API_ENABLED,
    CUSTOMIZE_APPLICATION,
    MODIFY_ALL_DATA,
    MODIFY_METADATA,
    OBJECT_NEEDS,
    PERMISSION_SET_NAME,
    PUSH_TOPICS,
    STREAMING_API,
    VIEW_SETUP,
)


class Status(StrEnum):
    """The outcome of one check."""

    PASS = "PASS"  # noqa: S105 (a check status, not a password)
    TODO = "TODO"  # pending: ilyd does it itself when the org starts (auto_provision)
    WARN = "WARN"  # optional: works without it, at the cost the line names
    FAIL = "FAIL"  # blocked: ilyd cannot do it with its permissions; the admin must act


class Mode(StrEnum):
    """How the org runs (the values of the org detail key `mode`)."""

    STREAMING = "streaming"  # PushTopics, real time
    POLLING = "polling"  # SOQL on SystemModstamp every poll_interval
    PARTIAL = "partial"  # some Ily fields missing or not writable: writes the rest


@dataclass(frozen=True)
class CheckResult:
    """One installation step: what was checked, and for a non-PASS why it matters and how
    to fix it (a Setup path in Salesforce or an ilyd command)."""

    step: str
    status: Status
    summary: str
    consequence: str | None = None
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {**asdict(self), "status": str(self.status)}

    def line(self) -> str:
        """`WARN  step  summary → consequence; fix: …` for humans."""
        text = f"{self.status:<4}  {self.step:<40}  {self.summary}"
        if self.consequence:
            text += f"\n      {'':<40}  consequence: {self.consequence}"
        if self.fix:
            text += f"\n      {'':<40}  fix: {self.fix}"
        return text


@dataclass(frozen=True)
class SandboxRefresh:
    """The org id stored for this org and the one Salesforce now reports."""

    stored_org_id: str | None
    current_org_id: str
    acknowledged: bool = True  # False while a detected refresh awaits `ilyd connect`


@dataclass(frozen=True)
class Context:
    """What the checks need besides the facts."""

    org: str  # ilyd's name for the org (in commands)
    objects: tuple[str, ...]
    api_budget_ratio: float
    poll_interval: float
    refresh: SandboxRefresh | None = None
    # ilyd creates what it can when the org starts: such a gap is pending, not blocked.
    auto_provision: bool = False
    source: str = "auto"  # where changes come from: auto | cdc | pushtopic | polling


def _pass(step: str, summary: str) -> CheckResult:
    return CheckResult(step, Status.PASS, summary)


def _ilyd_does(ctx: Context, can: bool) -> Status:
    """TODO when ilyd can close the gap itself at the org's start, else FAIL."""
    return Status.TODO if can and ctx.auto_provision else Status.FAIL


def streaming_available(facts: OrgFacts, objects: tuple[str, ...]) -> bool:
    """Streaming needs the org setting, the user's Streaming API permission and usable
    PushTopics (present and right, or the permission to create and correct them)."""
    if not facts.streaming_enabled or not facts.has(STREAMING_API):
        return False
    if "Read" not in facts.object_access("PushTopic"):
        return False
    topics_ok = all(
        (t := facts.push_topics.get(PUSH_TOPICS[o].name)) is not None
        and not PUSH_TOPICS[o].differences(t, str(t.get("ApiVersion") or "0"))
        for o in objects)
    return topics_ok or facts.can_manage_push_topics()


def fields_complete(facts: OrgFacts) -> bool:
    """Every Ily field of the configured objects exists and the user can write it."""
    return all(f.writable for f in facts.fields.values())


def decide_mode(facts: OrgFacts, objects: tuple[str, ...]) -> Mode:
    """partial when fields are missing or unwritable, else streaming or polling."""
    if not fields_complete(facts):
        return Mode.PARTIAL
    return Mode.STREAMING if streaming_available(facts, objects) else Mode.POLLING


def _polling(ctx: Context) -> str:
    return (f"ilyd polls for changes (SOQL on SystemModstamp every {ctx.poll_interval:g} s)"
            " instead of receiving them in real time")


def _system_checks(facts: OrgFacts, ctx: Context) -> Iterator[CheckResult]:
    setup = "Setup > Users > Profiles (or Permission Sets) > the integration user's profile"
    without = {
        MODIFY_ALL_DATA: ("Modify All Data", "ilyd can still enrich records it can edit, but "
                          "cannot manage its permission set or write records it does not own"),
        CUSTOMIZE_APPLICATION: ("Customize Application", "ilyd cannot create its fields; "
                                "it writes only the Ily fields that exist"),
        MODIFY_METADATA: ("Modify Metadata Through Metadata API Functions",
                          "ilyd cannot create its fields unless it has Modify All Data"),
    }
    for permission, (label, consequence) in without.items():
        step = "permission " + label
        if facts.has(permission):
            yield _pass(step, "granted")
            continue
        fix = f"{setup} > System Permissions > check {label!r}"
        if permission != MODIFY_ALL_DATA and not facts.can_create_fields:
            fix += (f"; or deploy the fields yourself: ilyd fields package {ctx.org}"
                    " --out ily-fields.zip && sf project deploy start --metadata-zip"
                    " ily-fields.zip")
        yield CheckResult(step, Status.WARN, "not granted", consequence, fix)


def _view_setup_check(facts: OrgFacts, ctx: Context) -> CheckResult:
    step = "permission View Setup and Configuration"
    if facts.has(VIEW_SETUP):
        return _pass(step, "granted")
    return CheckResult(
        step, Status.WARN, "not granted",
        "ilyd still streams or polls and writes, but cannot read permission sets (no"
        " permission-set introspection: whether its permission set is assigned and what it"
        " grants), nor which profiles can see the Ily fields (profile grants unavailable);"
        " API usage comes from the Sforce-Limit-Info header instead of /limits",
        "Setup > Users > Profiles (or Permission Sets) > the integration user's profile >"
        " System Permissions > check 'View Setup and Configuration'")


def _object_checks(facts: OrgFacts, ctx: Context) -> Iterator[CheckResult]:
    for sobject in (*ctx.objects, "PushTopic"):
        needs = OBJECT_NEEDS[sobject]
        missing = [a for a in needs if a not in facts.object_access(sobject)]
        step = f"object {sobject}"
        wanted = "/".join(needs)
        if not missing:
            yield _pass(step, f"{wanted} granted")
            continue
        fix = (f"Setup > Users > Profiles > the integration user's profile > Object Settings"
               f" > {sobject}: check {', '.join(missing)}")
        if sobject == "PushTopic":
            yield CheckResult(step, Status.WARN, f"missing {', '.join(missing)}",
                              "ilyd cannot create or correct its PushTopics; " + _polling(ctx),
                              fix)
        else:
            yield CheckResult(step, Status.FAIL, f"missing {', '.join(missing)}",
                              f"ilyd cannot read or enrich {sobject} records", fix)


def _field_checks(facts: OrgFacts, ctx: Context) -> Iterator[CheckResult]:
    create_fix = (f"ilyd ctl provision {ctx.org}" if facts.can_create_fields else
                  f"ilyd fields package {ctx.org} --out ily-fields.zip, then deploy it:"
                  " sf project deploy start --metadata-zip ily-fields.zip")
    for full, f in facts.fields.items():
        step = f"field {full}"
        sobject = full.split(".")[0]
        lacking = [a for a in OBJECT_NEEDS.get(sobject, ())
                   if a not in facts.object_access(sobject)]
        if f.writable:
            yield _pass(step, "present, writable")
        elif lacking:
            # Without Read/Edit on the object no field of it is writable, whatever its
            # field-level security says: granting FLS (or provisioning) would not help.
            also = " (the field itself is also missing)" if f.exists is False else ""
            yield CheckResult(step, Status.FAIL,
                              f"not writable: the integration user lacks"
                              f" {'/'.join(lacking)} on {sobject} (object permission){also}",
                              f"ilyd cannot write this value on any {sobject} record",
                              f"Setup > Users > Profiles > the integration user's profile >"
                              f" Object Settings > {sobject}: check {', '.join(lacking)}"
                              + (f"; then {create_fix}" if f.exists is False else ""))
        elif f.exists is False:
            yield CheckResult(step, _ilyd_does(ctx, facts.can_create_fields), "missing",
                              "ilyd cannot write this value (the org runs in partial mode)",
                              create_fix)
        elif f.exists is None and not f.readable:
            yield CheckResult(step, _ilyd_does(ctx, facts.can_manage_permission_sets),
                              "not visible to the integration user"
                              " (missing, or no field-level security)",
                              "ilyd cannot write this value (the org runs in partial mode)",
                              f"ilyd ctl provision {ctx.org}")
        else:
            grant_fix = (f"ilyd ctl provision {ctx.org} (grants it through the"
                         f" {PERMISSION_SET_NAME} permission set)"
                         if facts.can_manage_permission_sets else
                         f"Setup > Object Manager > {full.split('.')[0]} > Fields &"
                         f" Relationships > {full.split('.')[1]} > Set Field-Level Security:"
                         " Visible for the integration user's profile")
            yield CheckResult(step, _ilyd_does(ctx, facts.can_manage_permission_sets),
                              "exists but the integration user cannot"
                              " write it (field-level security)",
                              "ilyd cannot write this value (the org runs in partial mode)",
                              grant_fix)


def _permission_set_check(facts: OrgFacts, ctx: Context) -> CheckResult:
    step = f"permission set {PERMISSION_SET_NAME}"
    hidden = facts.unknown.get("permission_sets") or facts.unknown.get("permission_set")
    if hidden is not None:
        return CheckResult(step, Status.WARN, f"cannot be read ({hidden})",
                           "ilyd cannot tell whether its permission set is assigned or"
                           " complete; the field lines above say what it can write",
                           "see permission View Setup and Configuration")
    if facts.permission_set_id is None:
        problem = "missing"
    elif facts.permission_set_id not in facts.assigned_sets:
        problem = "not assigned to the integration user"
    else:
        lacking = [n for n, f in facts.fields.items() if f.exists and not (
            (g := facts.permission_set_grants.get(n.lower())) and g[1] and g[2])]
        if not lacking:
            return _pass(step, "present, assigned, grants Read/Edit on every Ily field")
        problem = f"lacks Read/Edit on {len(lacking)} Ily field(s)"
    fix = (f"ilyd ctl provision {ctx.org}" if facts.can_manage_permission_sets else
           "grant the integration user 'Manage Profiles and Permission Sets', then ilyd ctl"
           f" provision {ctx.org}; or set field-level security by hand")
    return CheckResult(step, _ilyd_does(ctx, facts.can_manage_permission_sets), problem,
                       "the integration user may not be able to write the Ily fields", fix)


def _streaming_checks(facts: OrgFacts, ctx: Context) -> Iterator[CheckResult]:
    if facts.streaming_enabled:
        yield _pass("streaming api (org)", "enabled")
    elif facts.streaming_enabled is False:
        yield CheckResult("streaming api (org)", Status.WARN, "disabled", _polling(ctx),
                          "Setup > User Interface > check 'Enable Streaming API'")
    else:
        yield CheckResult("streaming api (org)", Status.WARN,
                          "cannot tell: the integration user cannot read PushTopic",
                          _polling(ctx), "grant Read on PushTopic (see object PushTopic)")
    if facts.has(STREAMING_API):
        yield _pass("permission Streaming API", "granted")
    else:
        yield CheckResult("permission Streaming API", Status.WARN, "not granted", _polling(ctx),
                          "Setup > Users > Profiles > the integration user's profile > System"
                          " Permissions > check 'Streaming API'")
    usable = facts.streaming_enabled and facts.has(STREAMING_API)
    for sobject in ctx.objects:
        spec = PUSH_TOPICS[sobject]
        step = f"pushtopic {spec.name}"
        record = facts.push_topics.get(spec.name)
        if not usable:
            yield CheckResult(step, Status.WARN, "not usable while streaming is unavailable",
                              _polling(ctx), "see the streaming lines above")
            continue
        if record is None:
            summary = "missing" if facts.push_topic_error is None else (
                f"cannot read PushTopics ({facts.push_topic_error})")
        else:
            version = str(record.get("ApiVersion") or "0")
            diff = spec.differences(record, version)
            if not diff:
                yield _pass(step, f"present: {spec.query}, NotifyForFields Referenced")
                continue
            summary = f"differs from what ilyd expects: {', '.join(diff)}"
        if facts.can_manage_push_topics():
            yield CheckResult(step, _ilyd_does(ctx, True), summary,
                              "ilyd receives no (or the wrong) change events for"
                              f" {sobject}", f"ilyd ctl provision {ctx.org}")
        else:
            yield CheckResult(step, Status.WARN, summary, _polling(ctx),
                              "grant Create/Read/Edit on PushTopic, then ilyd ctl provision"
                              f" {ctx.org}")


def _user_check(facts: OrgFacts, ctx: Context) -> CheckResult:
    step = "dedicated integration user"
    who = facts.username or facts.user_id
    if facts.interactive_logins:
        last = (f"; last {facts.last_interactive_login}" if facts.last_interactive_login
                else "")
        return CheckResult(
            step, Status.WARN,
            f"{who} logged in interactively {facts.interactive_logins} time(s) in the last"
            f" {INTERACTIVE_WINDOW_DAYS} days (browser logins{last})",
            "it looks like a person's everyday account: when that person changes the"
            " password, leaves or is deactivated, enrichment stops, and their own edits are"
            " mixed with ilyd's in the audit fields and the API allowance",
            "Setup > Users > Users > New User: a dedicated integration user (profile with"
            " 'API Only User'), give it the permissions above, then log in as it with"
            f" ilyd connect {ctx.org} --config …")
    if facts.interactive_logins is None:
        return _pass(step, f"{who} (login history not readable; make sure it is not a"
                           " person's everyday account)")
    return _pass(step, f"{who}, no interactive logins in the last"
                       f" {INTERACTIVE_WINDOW_DAYS} days")


def _profiles_check(facts: OrgFacts, ctx: Context) -> CheckResult:
    step = "profiles reading the Ily fields"
    if "profile_readers" in facts.unknown:
        return CheckResult(step, Status.WARN, "cannot be read (profile grants unavailable)",
                           "ilyd cannot tell whether your users see the Ily fields",
                           "see permission View Setup and Configuration")
    if facts.profile_readers:
        return _pass(step, ", ".join(facts.profile_readers))
    return CheckResult(step, Status.WARN, "none",
                       "your users do not see the Ily fields on records",
                       f"ilyd ctl grant {ctx.org} --profile 'Standard User' [--profile …]")


def _usage_check(facts: OrgFacts, ctx: Context) -> CheckResult:
    step = "daily api usage"
    if facts.api_usage is None:
        return CheckResult(step, Status.WARN, "unknown (/limits not readable)",
                           "ilyd cannot tell how close the org is to its allowance",
                           "grant 'View Setup and Configuration' to the integration user")
    used, limit = facts.api_usage
    budget = int(limit * ctx.api_budget_ratio)
    summary = (f"{used:,} / {limit:,} used ({used / limit:.0%} of the allowance), ilyd budget"
               f" {budget:,} ({ctx.api_budget_ratio:.0%})" if limit else f"{used:,} used")
    if limit and used >= limit:
        return CheckResult(step, Status.FAIL, summary,
                           "every API call fails with REQUEST_LIMIT_EXCEEDED until the"
                           " 24-hour window rolls over",
                           "wait, or ask Salesforce for a higher allowance")
    if limit and used >= budget:
        return CheckResult(step, Status.WARN, summary,
                           "ilyd pauses writing until usage drops under its budget",
                           "raise api_budget_ratio in the config, or wait")
    return _pass(step, summary)


def _sandbox_check(facts: OrgFacts, ctx: Context) -> CheckResult:
    step = "sandbox refresh"
    refresh = ctx.refresh
    if refresh is None or refresh.stored_org_id is None:
        return _pass(step, f"org id {facts.org_id} (first seen now)")
    if refresh.stored_org_id == facts.org_id and refresh.acknowledged:
        return _pass(step, f"org id {facts.org_id} unchanged")
    previous = refresh.stored_org_id
    return CheckResult(
        step, Status.WARN, f"org id changed from {previous} to {facts.org_id}",
        "the sandbox was refreshed: the stored grant and replay ids belong to the old org;"
        " ilyd drops the replay ids",
        f"ilyd connect {ctx.org} --sandbox --config …, then ilyd ctl restart {ctx.org}")


def run_checks(facts: OrgFacts, ctx: Context) -> list[CheckResult]:
    """Every installation step, in the order an admin works through them."""
    results = [_pass("api access", f"connected as {facts.username or facts.user_id} to"
                     f" {facts.org_name or facts.org_id}"
                     f" ({'Sandbox' if facts.is_sandbox else 'Production'})")]
    if not facts.has(API_ENABLED):
        results[0] = CheckResult("api access", Status.FAIL, "API Enabled is not granted",
                                 "ilyd cannot work", "grant 'API Enabled' to the profile")
    results += _streaming_checks(facts, ctx)
    results.append(_user_check(facts, ctx))
    results += _system_checks(facts, ctx)
    results.append(_view_setup_check(facts, ctx))
    results += _object_checks(facts, ctx)
    results += _field_checks(facts, ctx)
    results.append(_permission_set_check(facts, ctx))
    results.append(_profiles_check(facts, ctx))
    results.append(_usage_check(facts, ctx))
    results.append(_sandbox_check(facts, ctx))
    return results


def api_failure(error: str, ctx: Context, code: str | None = None) -> list[CheckResult]:
    """The single line when not even the first API call works, blaming what failed."""
    if code == "REQUEST_LIMIT_EXCEEDED":
        # The org is past an API limit: the connected app and the user are fine, and a
        # new login would not help. Calls are refused until the last 24 hours' usage drops
        # under the allowance (TotalRequests) or long requests finish (ConcurrentRequests).
        # https://developer.salesforce.com/docs/platform/salesforce-app-limits-cheatsheet/guide/salesforce-app-limits-platform-api.html
        # https://help.salesforce.com/s/articleView?id=xcloud.setup_system_overview_api.htm&type=5
        return [CheckResult("api access", Status.FAIL, f"the org is past its API limit ({error})",
                            "Salesforce refuses every API call until the last 24 hours' usage"
                            " drops under the org's allowance; ilyd pauses and resumes by"
                            " itself; nothing else can be checked now",
                            "nothing to fix in ilyd or the connected app: wait (Setup > System"
                            " Overview > API Usage shows the last 24 hours), lower"
                            " api_budget_ratio if ilyd uses too much, or buy more API calls")]
    if code in ("invalid_client", "invalid_client_id"):
        # Salesforce refused the consumer key or secret, not the user's grant: a new
        # `ilyd connect` would be refused the same way.
        return [CheckResult("api access", Status.FAIL, error,
                            "ilyd cannot reach the org; nothing else can be checked",
                            "put the connected app's consumer secret in the org's"
                            " client_secret_file (or _credential / _env) and its consumer"
                            " key in client_id; a running daemon then needs ilyd ctl reload")]
    return [CheckResult("api access", Status.FAIL, error,
                        "ilyd cannot reach the org; nothing else can be checked",
                        f"check the connected app and the user, or run ilyd connect {ctx.org}")]
