"""How an org is fed (streaming or polling), decided once per start, and the facts a
warm start decides from.

The start-up checks' facts are stored (`ilyd.store.org_facts`) with the feed they gave.
A warm start reads them back instead of asking Salesforce again, as long as they are
about the org the token now signs in to: a refreshed sandbox has a new org id, and its
start gathers everything afresh. The provisioner checks again in the background,
`recheck_delay` seconds after the start, and restarts the org when the feed changed.
"""

from __future__ import annotations

import random

import structlog

from ilyd.provision.checks import streaming_available
from ilyd.provision.facts import OrgFacts, facts_as_json, facts_from_json
from ilyd.store.org_facts import OrgFactsStore

__all__ = ["POLLING", "STREAMING", "decide_feed", "recheck_delay", "remember", "stored_facts"]

log = structlog.get_logger(__name__)

STREAMING = "streaming"
POLLING = "polling"


def decide_feed(facts: OrgFacts | None, objects: tuple[str, ...], source: str) -> str:
    """Polling when configured so or when streaming is not available to the user."""
    if source == "polling" or facts is None or not streaming_available(facts, objects):
        return POLLING
    return STREAMING


def stored_facts(store: OrgFactsStore, org: str, org_id: str | None, *,
                 checked: bool = False) -> OrgFacts | None:
    """The org's stored facts when they are about `org_id` (the token's org), else None;
    with `checked`, only once the provisioner's start-up run finished against them."""
    row = store.get(org)
    if row is None or (checked and row.checked_at is None):
        return None
    try:
        facts = facts_from_json(row.facts)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("stored_facts_unreadable", error=str(exc))
        return None
    if not org_id or facts.org_id != org_id:
        return None
    return facts


def remember(store: OrgFactsStore, org: str, facts: OrgFacts,
             learned_at: float | None = None) -> None:
    """Store what the checks read (`learned_at`: when the reading began; default now)."""
    store.put(org, facts_as_json(facts), learned_at)


def recheck_delay(within: float, rand: float | None = None) -> float:
    """When a warm start checks the org again: a random moment in the second half of
    `within` seconds, so a thousand orgs started together do not ask at the same second
    and no org waits for its checks longer than `within`."""
    share = random.random() if rand is None else rand
    return within * (0.5 + share / 2)
