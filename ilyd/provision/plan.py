"""Plan and apply: what provisioning would change in an org, and doing it.

`make_plan(facts, …)` lists `Action`s (and what it must skip, and why) without touching
the org — `ilyd ctl provision ORG --plan` prints exactly this. `apply(rest, plan)` runs
the actions in order: fields, the Ily_Connector permission set, its FieldPermissions, its
assignment, the PushTopics. A plan of an org already provisioned is empty: a second run
changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import structlog

from ilyd import metrics
from ilyd.enrich.fields import by_api_name
from ilyd.errors import SalesforceError
from ilyd.provision.facts import OrgFacts
from ilyd.provision.spec import (
    CUSTOMIZE_APPLICATION,
    PERMISSION_SET_DESCRIPTION,
    PERMISSION_SET_LABEL,
    PERMISSION_SET_NAME,
    PUSH_TOPICS,
    STREAMING_API,
    member_body,
)
from ilyd.salesforce.rest import MAX_COLLECTION_SIZE, RestClient, SaveResult
from ilyd.salesforce.tooling_composite import CREATES_PER_CALL, create_many

log = structlog.get_logger(__name__)


class ActionKind(StrEnum):
    """What one provisioning action does (the label of ilyd_provision_actions_total)."""

    CREATE_FIELD = "create_field"
    CREATE_PERMISSION_SET = "create_permission_set"
    GRANT_FIELD = "grant_field"
    ASSIGN_PERMISSION_SET = "assign_permission_set"
    CREATE_PUSH_TOPIC = "create_push_topic"
    UPDATE_PUSH_TOPIC = "update_push_topic"
    SELECT_CDC_ENTITY = "select_cdc_entity"


@dataclass(frozen=True)
class Action:
    """One change to the org. `target` names what it changes; `record_id` is set when an
    existing record is updated."""

    kind: ActionKind
    target: str
    detail: str = ""
    record_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {**asdict(self), "kind": str(self.kind)}

    def line(self) -> str:
        """One line for humans."""
        return f"{self.kind:<22} {self.target}" + (f"  ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class Plan:
    """The actions to run, and what cannot be done with the user's permissions."""

    actions: tuple[Action, ...]
    skipped: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing to change."""
        return not self.actions


def _field_actions(facts: OrgFacts, skipped: list[str], org: str) -> list[Action]:
    missing = [n for n, f in facts.fields.items() if f.exists is False]
    if missing and not facts.can_create_fields:
        skipped.append(
            f"{len(missing)} Ily field(s) missing, but the integration user lacks Customize"
            " Application and Modify All Data / Modify Metadata: run ilyd fields package"
            f" {org} --out ily-fields.zip and deploy it with the Salesforce CLI")
        return []
    return [Action(ActionKind.CREATE_FIELD, n, by_api_name()[n.split(".")[1]].label)
            for n in missing]


def _permission_set_actions(facts: OrgFacts, created: Sequence[Action],
                            skipped: list[str]) -> list[Action]:
    will_exist = [n for n, f in facts.fields.items() if f.exists] + [a.target for a in created]
    if "permission_sets" in facts.unknown or "permission_set" in facts.unknown:
        # The permission set cannot be read (no View Setup and Configuration): describe
        # still says which fields the user can write; only those it cannot are worth a word.
        blocked = [n for n in will_exist if not (f := facts.fields.get(n)) or not f.writable]
        if blocked:
            skipped.append(
                f"{len(blocked)} Ily field(s) not writable, and the {PERMISSION_SET_NAME}"
                " permission set cannot be read without View Setup and Configuration: grant"
                " it, or set field-level security on the Ily fields by hand")
        return []
    ps_id = facts.permission_set_id
    needed: list[Action] = []
    if ps_id is None:
        needed.append(Action(ActionKind.CREATE_PERMISSION_SET, PERMISSION_SET_NAME))
    for name in will_exist:
        grant = facts.permission_set_grants.get(name.lower())
        if grant is None or not (grant[1] and grant[2]):
            needed.append(Action(ActionKind.GRANT_FIELD, name, "Read/Edit",
                                 grant[0] if grant else None))
    if ps_id is None or ps_id not in facts.assigned_sets:
        needed.append(Action(ActionKind.ASSIGN_PERMISSION_SET, PERMISSION_SET_NAME,
                             f"to {facts.username or facts.user_id}"))
    if not needed:
        return []
    if not facts.can_manage_permission_sets:
        skipped.append(
            f"the {PERMISSION_SET_NAME} permission set needs changes ({len(needed)}), but the"
            " integration user lacks Manage Profiles and Permission Sets: grant it, or set"
            " field-level security on the Ily fields by hand")
        return []
    return needed


def _push_topic_actions(facts: OrgFacts, objects: Sequence[str], api_version: str,
                        skipped: list[str]) -> list[Action]:
    if not facts.streaming_enabled or not facts.has(STREAMING_API):
        skipped.append("PushTopics: the Streaming API is unavailable (org setting or user"
                       " permission); the org polls instead")
        return []
    if facts.push_topic_error is not None:
        skipped.append(f"PushTopics: cannot read them ({facts.push_topic_error})")
        return []
    out = []
    for sobject in objects:
        spec = PUSH_TOPICS[sobject]
        record = facts.push_topics.get(spec.name)
        if record is None:
            out.append(Action(ActionKind.CREATE_PUSH_TOPIC, spec.name, spec.query))
            continue
        diff = spec.differences(record, str(record.get("ApiVersion") or api_version))
        if diff:
            out.append(Action(ActionKind.UPDATE_PUSH_TOPIC, spec.name,
                              f"correct {', '.join(diff)}", str(record["Id"])))
    if out and not facts.can_manage_push_topics():
        skipped.append("PushTopics need changes, but the integration user lacks"
                       " Create/Read/Edit on PushTopic; the org polls instead")
        return []
    return out


def _cdc_actions(facts: OrgFacts, objects: Sequence[str], source: str,
                 skipped: list[str]) -> list[Action]:
    """With source = "cdc", selecting the objects for change events (one Tooling
    PlatformEventChannelMember each on the ChangeEvents channel)."""
    if source != "cdc":
        return []
    if facts.cdc_selected is None:
        skipped.append("Change Data Capture: cannot read the selection"
                       f" ({facts.unknown.get('change_data_capture', 'not readable')});"
                       " the objects stream PushTopics")
        return []
    missing = [o for o in objects if o in PUSH_TOPICS and o not in facts.cdc_selected]
    if missing and not facts.has(CUSTOMIZE_APPLICATION):
        skipped.append(f"Change Data Capture: {', '.join(missing)} not selected, and the"
                       " integration user lacks Customize Application; they stream"
                       " PushTopics")
        return []
    return [Action(ActionKind.SELECT_CDC_ENTITY, f"ChangeEvents_{o}ChangeEvent",
                   f"{o} change events") for o in missing]


def make_plan(facts: OrgFacts, objects: Sequence[str], api_version: str, org: str,
              source: str = "auto") -> Plan:
    """What provisioning would do now (reads nothing, writes nothing)."""
    skipped: list[str] = []
    fields = _field_actions(facts, skipped, org)
    actions = [*fields, *_permission_set_actions(facts, fields, skipped),
               *_push_topic_actions(facts, objects, api_version, skipped),
               *_cdc_actions(facts, objects, source, skipped)]
    return Plan(tuple(actions), tuple(skipped))


@dataclass
class ApplyResult:
    """What `apply` did: the actions done and those that failed, with Salesforce's words."""

    done: list[Action] = field(default_factory=list)
    failed: list[tuple[Action, str]] = field(default_factory=list)


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


class _Applier:
    def __init__(self, rest: RestClient, facts: OrgFacts, api_version: str,
                 progress: Callable[[Action], None] | None) -> None:
        self.rest = rest
        self.facts = facts
        self.api_version = api_version
        self.progress = progress
        self.result = ApplyResult()
        self.ps_id = facts.permission_set_id

    def ok(self, action: Action) -> None:
        self.result.done.append(action)
        metrics.PROVISION_ACTIONS.labels(action=str(action.kind)).inc()
        # At debug: a cold start logs some eighty actions per org, and a thousand orgs
        # logging each queue on the one log handler's lock (provisioning_finished sums
        # them up at info).
        log.debug("provisioned", action=str(action.kind), target=action.target)
        if self.progress is not None:
            self.progress(action)

    def failed(self, action: Action, error: str) -> None:
        self.result.failed.append((action, error))
        metrics.PROVISION_ACTION_FAILURES.labels(action=str(action.kind)).inc()
        log.warning("provisioning_action_failed", action=str(action.kind),
                    target=action.target, error=error)

    def saved(self, actions: Sequence[Action], results: Sequence[SaveResult]) -> None:
        """Each action done or failed as its record's save result says."""
        for action, result in zip(actions, results, strict=True):
            if result.success:
                self.ok(action)
            else:
                self.failed(action, "; ".join(f"{e.status_code}: {e.message}"
                                              for e in result.errors))

    def run(self, action: Action, call: Callable[[], object]) -> bool:
        try:
            call()
        except SalesforceError as exc:
            self.failed(action, str(exc))
            return False
        self.ok(action)
        return True

    def create_fields(self, actions: Sequence[Action]) -> None:
        """The fields in Tooling composite calls (`ilyd.salesforce.tooling_composite`),
        each created or refused on its own."""
        for chunk in _chunks(actions, CREATES_PER_CALL):
            bodies = []
            for action in chunk:
                sobject, api_name = action.target.split(".")
                bodies.append(by_api_name()[api_name].tooling_body(sobject))
            try:
                results = create_many(self.rest, "CustomField", bodies)
            except SalesforceError as exc:
                for action in chunk:
                    self.failed(action, str(exc))
                continue
            for action, result in zip(chunk, results, strict=True):
                if isinstance(result, SalesforceError):
                    self.failed(action, str(result))
                else:
                    self.ok(action)

    def create_permission_set(self, action: Action) -> None:
        def create() -> None:
            self.ps_id = self.rest.create("PermissionSet", {
                "Name": PERMISSION_SET_NAME, "Label": PERMISSION_SET_LABEL,
                "Description": PERMISSION_SET_DESCRIPTION})
        self.run(action, create)

    def grant_fields(self, actions: list[Action]) -> None:
        if self.ps_id is None:
            for action in actions:
                self.failed(action, f"no {PERMISSION_SET_NAME} permission set")
            return
        for kind, items in (("update", [a for a in actions if a.record_id]),
                            ("create", [a for a in actions if not a.record_id])):
            for chunk in _chunks(items, MAX_COLLECTION_SIZE):
                self._grant_chunk(kind, chunk)

    def _grant_chunk(self, kind: str, chunk: Sequence[Action]) -> None:
        try:
            if kind == "update":
                results = self.rest.update_collection("FieldPermissions", [
                    {"Id": a.record_id, "PermissionsRead": True, "PermissionsEdit": True}
                    for a in chunk])
            else:
                results = self.rest.create_collection("FieldPermissions", [
                    {"ParentId": self.ps_id, "SobjectType": a.target.split(".")[0],
                     "Field": a.target, "PermissionsRead": True, "PermissionsEdit": True}
                    for a in chunk])
        except SalesforceError as exc:
            for action in chunk:
                self.failed(action, str(exc))
            return
        self.saved(chunk, results)

    def assign(self, action: Action) -> None:
        if self.ps_id is None:
            self.failed(action, f"no {PERMISSION_SET_NAME} permission set")
            return
        self.run(action, lambda: self.rest.create("PermissionSetAssignment", {
            "AssigneeId": self.facts.user_id, "PermissionSetId": self.ps_id}))

    def push_topic(self, action: Action) -> None:
        body = self._topic_body(action)
        if action.record_id:
            del body["Name"]
            self.run(action, lambda: self.rest.update("PushTopic", str(action.record_id), body))
        else:
            self.run(action, lambda: self.rest.create("PushTopic", body))

    def create_push_topics(self, actions: Sequence[Action]) -> None:
        """New topics in one sObject Collections call (one API call for both objects')."""
        if len(actions) < 2:
            for action in actions:
                self.push_topic(action)
            return
        try:
            results = self.rest.create_collection(
                "PushTopic", [self._topic_body(a) for a in actions])
        except SalesforceError as exc:
            # Should an org refuse PushTopic in a Collections call, one call each still
            # creates them (and says why, should that fail too).
            log.info("push_topics_one_by_one", error=str(exc))
            for action in actions:
                self.push_topic(action)
            return
        self.saved(actions, results)

    def _topic_body(self, action: Action) -> dict[str, Any]:
        sobject = next(o for o, s in PUSH_TOPICS.items() if s.name == action.target)
        return PUSH_TOPICS[sobject].body(self.api_version)


def apply(rest: RestClient, facts: OrgFacts, plan: Plan, api_version: str,
          progress: Callable[[Action], None] | None = None) -> ApplyResult:
    """Run the plan's actions in order; a failed action is recorded, the rest still run."""
    applier = _Applier(rest, facts, api_version, progress)
    by_kind: dict[ActionKind, list[Action]] = {}
    for action in plan.actions:
        by_kind.setdefault(action.kind, []).append(action)
    applier.create_fields(by_kind.get(ActionKind.CREATE_FIELD, []))
    failed_fields = {a.target for a, _ in applier.result.failed}
    for action in by_kind.get(ActionKind.CREATE_PERMISSION_SET, []):
        applier.create_permission_set(action)
    grants = [a for a in by_kind.get(ActionKind.GRANT_FIELD, []) if a.target not in failed_fields]
    if grants:
        applier.grant_fields(grants)
    for action in by_kind.get(ActionKind.ASSIGN_PERMISSION_SET, []):
        applier.assign(action)
    applier.create_push_topics(by_kind.get(ActionKind.CREATE_PUSH_TOPIC, []))
    for action in by_kind.get(ActionKind.UPDATE_PUSH_TOPIC, []):
        applier.push_topic(action)
    for action in by_kind.get(ActionKind.SELECT_CDC_ENTITY, []):
        sobject = action.detail.split()[0]
        body = member_body(sobject)
        applier.run(action, lambda body=body: rest.create(  # type: ignore[misc]
            "PlatformEventChannelMember", body, tooling=True))
    rest.forget_describe()
    return applier.result
