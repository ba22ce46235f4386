"""What an org's pipeline parts share: one Salesforce client, the stores, the providers,
the API budget, and a wake-up signal for the enricher.

Built once per org start from its config, secrets and the state database (the actors
share it; the last one to let go closes it). Providers are shared by every org that
configures the same one, behind one cache (`ilyd.pipeline.providers`), so a hundred orgs
on the sample load it once and a vendor is asked about a domain once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ilyd.config import OrgConfig
from ilyd.pipeline.budget import ApiBudget
from ilyd.pipeline.providers import chain_for, watch_health
from ilyd.pipeline.wakeup import Wake
from ilyd.salesforce.connect import SecretValues, make_org_rest_client
from ilyd.salesforce.rest import RestClient
from ilyd.store import Database
from ilyd.store.inbox import Inbox
from ilyd.store.record_hashes import RecordHashStore
from ilyd.store.writes import WriteStateStore

__all__ = ["OrgPipeline"]


class OrgPipeline:
    """The shared parts of one org's enricher, writer and poller."""

    def __init__(
        self,
        config: OrgConfig,
        secrets: SecretValues,
        database: Database,
        *,
        publish: Callable[..., None] | None = None,
        rest: RestClient | None = None,
        probe_interval: float | None = None,
    ) -> None:
        self.config = config
        self.org = str(config.name)
        self.rest = rest or make_org_rest_client(config, secrets)
        self.database = database
        self.inbox = Inbox(database)
        self._reclaim_leases()
        self.state = WriteStateStore(database)
        self.hashes = RecordHashStore(database)
        self._publish = publish
        self.provider = watch_health(chain_for(config.enrich, secrets, database), publish)
        self.budget = ApiBudget(config.api_budget_ratio, lambda: self.rest.api_usage,
                                self.rest.limits,
                                # While throttled, look again as often as a poll would.
                                probe_interval=probe_interval or min(60.0, config.poll_interval),
                                on_change=self._throttle_changed)
        # Set when rows were put in-process (subscriber, poller, writer): the enricher
        # looks at once instead of polling.
        self.wake = Wake()
        self._users = 0
        self._lock = threading.Lock()

    def _reclaim_leases(self) -> None:
        """Rows the org's previous enricher held (a killed daemon, a restarted org) are
        claimable at once: one enricher per org exists, and it is this one, not yet
        started — waiting out the dead worker's lease would only delay them."""
        with self.database.transaction() as tx:
            tx.execute("UPDATE inbox SET lease_owner = NULL, lease_until = NULL"
                       " WHERE org = ? AND lease_owner IS NOT NULL", (self.org,))

    def _throttle_changed(self, throttled: bool, reason: str | None) -> None:
        if self._publish is not None:
            self._publish(throttled=throttled or None, throttle_reason=reason)

    def acquire(self) -> OrgPipeline:
        """Count one more user (an actor)."""
        with self._lock:
            self._users += 1
        return self

    def release(self) -> None:
        """One user is done; the last one closes the Salesforce client."""
        with self._lock:
            self._users -= 1
            last = self._users <= 0
        if last:
            self.provider.close()
            self.rest.close()

    def status(self) -> dict[str, Any]:
        """A few figures for status views."""
        return {"inbox": self.inbox.depth(self.org), "throttled": self.budget.throttled}
