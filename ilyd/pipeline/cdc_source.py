"""Which real-time source each object streams from: Change Data Capture or its PushTopic.

- `auto`: CDC for the objects the org already selected for change events (no entity of
  the org's allowance used up by ilyd), the PushTopic for the others.
- `cdc`: ilyd selects the objects itself, one Tooling `PlatformEventChannelMember` on the
  standard `ChangeEvents` channel each
  (https://developer.salesforce.com/docs/platform/api-tooling/references/tooling-objects/tooling-platformeventchannelmember.html);
  when it may not (the org's entity allowance is used up, no Customize Application) the
  object falls back to its PushTopic and the reason is kept for `ilyd ctl orgs`.
- `pushtopic`: PushTopics only.
(`polling` never gets here: the poller feeds the inbox.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import structlog

from ilyd.errors import IlydError
from ilyd.pipeline.cdc import CDC_CHANNELS
from ilyd.provision.spec import PUSH_TOPICS, member_body
from ilyd.salesforce.rest import RestClient

__all__ = ["SourceChoice", "choose_source"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SourceChoice:
    """The channels to subscribe to (channel -> object), the org's source (`cdc` when any
    object streams change events), and why CDC is not used where it is not."""

    channels: Mapping[str, str]
    source: str
    reason: str | None = None


def choose_source(rest: RestClient, mode: str, objects: Sequence[str],
                  selected: frozenset[str] | None, unreadable: str | None = None
                  ) -> SourceChoice:
    """Decide each object's channel for `mode` (auto, cdc or pushtopic), given the objects
    the org selected for change events (`OrgFacts.cdc_selected`; None: unreadable, why)."""
    wanted = [o for o in objects if o in PUSH_TOPICS]
    if mode == "pushtopic":
        return _choice(wanted, frozenset(), None)
    if selected is None:
        return _choice(wanted, frozenset(),
                       f"cannot read the Change Data Capture selection ({unreadable})")
    cdc = {o for o in wanted if o in selected}
    reasons = []
    if mode == "cdc":
        for sobject in (o for o in wanted if o not in cdc):
            try:
                rest.create("PlatformEventChannelMember", member_body(sobject), tooling=True)
            except IlydError as exc:
                if getattr(exc, "error_code", None) == "DUPLICATE_VALUE":
                    cdc.add(sobject)  # selected meanwhile (by provisioning, say)
                    continue
                reasons.append(f"{sobject} not selected for Change Data Capture: "
                               f"{str(exc).splitlines()[0]}")
                continue
            log.info("cdc_entity_selected", sobject=sobject)
            cdc.add(sobject)
    elif len(cdc) < len(wanted):
        reasons.append("auto: " + ", ".join(o for o in wanted if o not in cdc)
                       + " not selected for Change Data Capture in the org (ilyd uses no"
                         " entity of its allowance; set source = \"cdc\" to select them)")
    return _choice(wanted, frozenset(cdc), "; ".join(reasons) or None)


def _choice(objects: Sequence[str], cdc: frozenset[str], reason: str | None) -> SourceChoice:
    channels = {CDC_CHANNELS[o] if o in cdc else PUSH_TOPICS[o].channel: o for o in objects}
    return SourceChoice(channels, "cdc" if cdc else "pushtopic", reason)
