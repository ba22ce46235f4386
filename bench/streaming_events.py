"""Events per second through one subscriber: devorg → Bayeux → inbox (+ replay id).

Creates N leads through sObject Collections (200 per call) while one SubscriptionLoop
is connected, and times from the first create until every lead is in the inbox.

    .venv/bin/python bench/streaming_events.py [N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import requests
import structlog

from ilyd.actors.subscriber import SubscriptionLoop
from ilyd.devorg import DevOrg
from ilyd.salesforce.auth import make_token_provider
from ilyd.salesforce.rest import RestClient
from ilyd.store import Database
from ilyd.store.inbox import Inbox

TOPIC = "/topic/IlyLeadChanges"


def main(n: int) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with DevOrg(port=0) as dev, tempfile.TemporaryDirectory() as tmp:
        org = dev.orgs[0]
        requests.post(f"{dev.admin}/streaming/{org.name}/settings",
                      json={"hold_seconds": 5}, timeout=10).raise_for_status()
        tp = make_token_provider("password", login_url=org.login_url, client_id=org.client_id,
                                 client_secret=org.client_secret, username=org.username,
                                 password=org.password, org=org.name)
        rest = RestClient(org.name, tp)
        rest.create("PushTopic", {"Name": "IlyLeadChanges", "ApiVersion": 62.0,
                                  "Query": "SELECT Id, Email, Company, Website FROM Lead"})
        db = Database(Path(tmp) / "state.db")
        inbox = Inbox(db)
        loop = SubscriptionLoop(org.name, f"{dev.url}/cometd/62.0", {TOPIC: "Lead"}, inbox,
                                access_token=lambda: tp.token().access_token)
        loop.start()
        while loop.client.state != "connected":
            time.sleep(0.01)
        start = time.perf_counter()
        for offset in range(0, n, 200):
            batch = [{"LastName": f"B{i}", "Company": f"Co{i}", "Email": f"b{i}@example.com"}
                     for i in range(offset, min(n, offset + 200))]
            rest.create_collection("Lead", batch)
        created = time.perf_counter() - start
        while inbox.depth(org.name) < n:
            time.sleep(0.005)
        total = time.perf_counter() - start
        loop.stop()
        rest.close()
        db.close()
    print(f"events:            {n}")
    print(f"create time:       {created:.2f} s ({n / created:,.0f} records/s into devorg)")
    print(f"all in inbox after {total:.2f} s")
    print(f"throughput:        {n / total:,.0f} events/s through one subscriber")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
