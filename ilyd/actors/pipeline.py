"""The org's parts of the real-time pipeline: writer, enricher, and the feed.

They share one `OrgPipeline` (client, stores, providers, budget), built by the first
of them to start and closed by the last to stop. Start order writer → enricher → feed;
the org stops them in reverse, so the writer goes last and hands what it still queues
back to the inbox.

The feed is one part, decided once per start without asking Salesforce: the poller
when the org is configured to poll or its last decision (stored in the state database,
`ilyd.store.org_facts`) was polling, else the subscriber, which decides from the facts
and, should they say polling, hands the org to a poller of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from ilyd.actors.component import Component
from ilyd.actors.context import ChildFactory, OrgContext
from ilyd.actors.enricher import EnricherComponent
from ilyd.actors.poller import PollerComponent
from ilyd.actors.subscriber import SubscriberComponent
from ilyd.actors.writer import WriterComponent
from ilyd.config import OrgConfig
from ilyd.errors import StoreError
from ilyd.pipeline.runtime import OrgPipeline
from ilyd.provision.feed import POLLING
from ilyd.store.org_facts import OrgFactsStore


class _Shared:
    """Builds the org's pipeline once, for the parts of one org start."""

    def __init__(self) -> None:
        self.pipeline: OrgPipeline | None = None
        self.writer: WriterComponent | None = None

    def get(self, context: OrgContext) -> OrgPipeline:
        if self.pipeline is None:
            if context.database is None:
                raise StoreError("the enrichment pipeline needs the state database; "
                                 "check [daemon] state_dir")
            self.pipeline = OrgPipeline(context.config, context.secrets, context.database,
                                        publish=context.publish)
        return self.pipeline.acquire()


def pipeline_children(config: OrgConfig) -> Sequence[tuple[str, ChildFactory]]:
    """(name, factory) of the writer, the enricher and the feed, in start order."""
    del config
    shared = _Shared()

    def writer(context: OrgContext) -> Component:
        shared.writer = WriterComponent(context, shared.get(context))
        return shared.writer

    def enricher(context: OrgContext) -> Component:
        assert shared.writer is not None  # started: the org starts the parts in order
        return EnricherComponent(context, shared.get(context), shared.writer.ref)

    def feed(context: OrgContext) -> Component:
        pipeline = shared.get(context)
        if context.config.source == "polling":
            return PollerComponent(context, pipeline)
        stored = OrgFactsStore(pipeline.database).get(context.name)
        if stored is not None and stored.feed == POLLING:
            return PollerComponent(
                context, pipeline, reason="streaming is not available to the integration user")
        return SubscriberComponent(context, pipeline)

    return (("writer", writer), ("enricher", enricher), ("feed", feed))
