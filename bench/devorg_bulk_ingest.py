"""devorg's Bulk API 2.0 ingest throughput: an `update` of a few Ily text fields on N
Accounts, as ilyd's resync sends it. Also times REST Collections updates (200 records per
PATCH), the real-time pipeline's write path.

The org is set up as ilyd provisions it: four Ily text fields with FLS granted through a
permission set, the IlyAccountChanges PushTopic and a CometD client subscribed to it, so
every updated record goes through the change feed, the Streaming endpoint's PushTopic
check and Change Data Capture event logs, record history and the batch accounting.

Prints devorg's processing rate (UploadComplete → JobComplete; also per CPU-second of
this process, steadier on a shared machine), the end-to-end rate
(create job → results read back) and RSS: after seeding, peak during the job, after it.
RSS is sampled in this process, which holds devorg, its records and the client. What a job
leaves behind is the org's new state, not the job: each updated record's new values and one
record-history entry per write (~450 B a row for four short text fields), the CDC event logs
(capped at 100,000 events a channel), and — on the first job — glibc's per-thread malloc
arenas: the new record versions are allocated in the worker thread's arena while the old
ones are freed into the seeding thread's (MALLOC_ARENA_MAX=1 halves the first job's growth).

    .venv/bin/python bench/devorg_bulk_ingest.py [--records 100000] [--collections 20000]
        [--no-streaming]
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import requests

from ilyd.devorg import DevOrg

V = "/services/data/v62.0"
FIELDS = {"Ily_Domain__c": 255, "Ily_Industry__c": 100, "Ily_Employee_Range__c": 40,
          "Ily_Match_Status__c": 40}


def rss_mib() -> float:
    """Resident set size of this process now, MiB."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class RssSampler:
    """Peak RSS over a stretch of time (sampled every 50 ms)."""

    def __init__(self) -> None:
        self.peak = rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_mib())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mib())


def setup(dev: DevOrg, http: requests.Session, records: int, streaming: bool) -> list[str]:
    """Seed, create the Ily fields and their FLS grant, the PushTopic; return Account ids."""
    org = dev.orgs[0]
    token = http.post(dev.url + "/services/oauth2/token", data={
        "grant_type": "refresh_token", "client_id": org.client_id,
        "client_secret": org.client_secret, "refresh_token": org.refresh_token},
        timeout=30).json()["access_token"]
    http.headers["Authorization"] = f"Bearer {token}"
    http.post(f"{dev.admin}/orgs/{org.name}/seed", json={"sobject": "Account",
                                                        "count": records}, timeout=600)
    ps = http.post(dev.url + V + "/sobjects/PermissionSet", json={
        "Name": "Ily_Connector", "Label": "Ily Connector"}, timeout=30).json()["id"]
    for name, length in FIELDS.items():
        created = http.post(dev.url + V + "/tooling/sobjects/CustomField", json={
            "FullName": f"Account.{name}",
            "Metadata": {"label": name[:-3].replace("_", " "), "type": "Text",
                         "length": length}}, timeout=30)
        assert created.status_code == 201, created.text
        grant = http.post(dev.url + V + "/sobjects/FieldPermissions", json={
            "ParentId": ps, "SobjectType": "Account", "Field": f"Account.{name}",
            "PermissionsRead": True, "PermissionsEdit": True}, timeout=30)
        assert grant.status_code == 201, grant.text
    assert http.post(dev.url + V + "/sobjects/PermissionSetAssignment", json={
        "AssigneeId": org.user_id, "PermissionSetId": ps}, timeout=30).status_code == 201
    if streaming:
        topic = http.post(dev.url + V + "/sobjects/PushTopic", json={
            "Name": "IlyAccountChanges", "Query": "SELECT Id, Name, Website FROM Account",
            "ApiVersion": 62.0, "NotifyForFields": "Referenced",
            "NotifyForOperationCreate": True, "NotifyForOperationUpdate": True,
            "NotifyForOperationUndelete": True, "NotifyForOperationDelete": False},
            timeout=30)
        assert topic.status_code == 201, topic.text
        hs = http.post(dev.url + "/cometd/62.0", json=[{
            "channel": "/meta/handshake", "version": "1.0",
            "supportedConnectionTypes": ["long-polling"]}], timeout=30).json()[0]
        # ilyd's own Ily writes raise no PushTopic event (NotifyForFields Referenced), so
        # this client's queue stays empty; CDC events are logged for replay regardless.
        sub = http.post(dev.url + "/cometd/62.0", json=[{
            "channel": "/meta/subscribe", "clientId": hs["clientId"],
            "subscription": "/topic/IlyAccountChanges"}], timeout=30).json()[0]
        assert sub["successful"], sub
    else:
        http.patch(f"{dev.admin}/orgs/{org.name}/settings",
                   json={"streaming_enabled": False}, timeout=30)
    ids: list[str] = []
    url: str | None = V + "/query?q=SELECT+Id+FROM+Account"
    while url:
        page = http.get(dev.url + url, timeout=600).json()
        ids.extend(r["Id"] for r in page["records"])
        url = page.get("nextRecordsUrl")
    return ids


def csv_body(ids: list[str], tag: str) -> bytes:
    """The upload: Id plus the four Ily fields."""
    lines = ["Id," + ",".join(FIELDS)]
    lines.extend(f"{rid},{tag}{n % 997}.example.com,Technology,51-200,matched"
                 for n, rid in enumerate(ids))
    return ("\n".join(lines) + "\n").encode()


def ingest(dev: DevOrg, http: requests.Session, ids: list[str], tag: str) -> None:
    """One ingest update job of every id; prints its figures."""
    base = dev.url + V + "/jobs/ingest"
    body = csv_body(ids, tag)
    before = rss_mib()
    with RssSampler() as rss:
        t0 = time.perf_counter()
        job = http.post(base, json={"object": "Account", "operation": "update",
                                    "contentType": "CSV", "lineEnding": "LF"},
                        timeout=30).json()
        put = http.put(f"{base}/{job['id']}/batches", data=body,
                       headers={"Content-Type": "text/csv"}, timeout=600)
        assert put.status_code == 201, put.text
        t1 = time.perf_counter()
        cpu1 = time.process_time()
        http.patch(f"{base}/{job['id']}", json={"state": "UploadComplete"}, timeout=30)
        while True:
            info = http.get(f"{base}/{job['id']}", timeout=30).json()
            if info["state"] in ("JobComplete", "Failed", "Aborted"):
                break
            time.sleep(0.02)
        t2 = time.perf_counter()
        cpu2 = time.process_time()
        ok = 0
        with http.get(f"{base}/{job['id']}/successfulResults", stream=True,
                      timeout=600) as results:
            for chunk in results.iter_content(1 << 20):
                ok += chunk.count(b"\n")
        ok -= 1  # header
        t3 = time.perf_counter()
    n = len(ids)
    assert info["state"] == "JobComplete", info
    assert ok == n, (ok, info)
    assert info["numberRecordsFailed"] == 0, info
    print(f"  ingest update {n:>9,} rows: processing {n / (t2 - t1):>9,.0f} rows/s "
          f"({t2 - t1:.2f} s; {n / (cpu2 - cpu1):,.0f} rows per CPU-second)  end to end "
          f"{n / (t3 - t0):>9,.0f} rows/s  upload {t1 - t0:.2f} s  results {t3 - t2:.2f} s")
    print(f"  RSS before {before:,.0f} MiB, peak {rss.peak:,.0f} MiB (+{rss.peak - before:,.0f})"
          f", after {rss_mib():,.0f} MiB")


def collections(dev: DevOrg, http: requests.Session, ids: list[str], count: int) -> None:
    """Collections PATCHes of 200 records (sequential, one client)."""
    url = dev.url + V + "/composite/sobjects"
    count = min(count, len(ids))
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    for start in range(0, count, 200):
        batch = [{"attributes": {"type": "Account"}, "Id": rid,
                  "Ily_Domain__c": f"rt{start}.example.com", "Ily_Match_Status__c": "matched"}
                 for rid in ids[start:start + 200]]
        answer = http.patch(url, json={"allOrNone": False, "records": batch}, timeout=60)
        assert answer.status_code == 200, answer.text[:300]
        assert all(r["success"] for r in answer.json()), answer.text[:300]
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    print(f"  Collections update {count:>9,} records: {count / elapsed:>9,.0f} records/s "
          f"({count / 200 / elapsed:,.0f} PATCHes of 200 per s; client and server share this "
          f"process: {count / cpu:,.0f} records per CPU-second)")


def small_patches(dev: DevOrg, http: requests.Session, ids: list[str], requests_n: int,
                  size: int) -> None:
    """The real-time writer's shape: many small Collections PATCHes (one client)."""
    url = dev.url + V + "/composite/sobjects"
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    for n in range(requests_n):
        batch = [{"attributes": {"type": "Account"}, "Id": rid,
                  "Ily_Domain__c": f"small{n}.example.com"}
                 for rid in ids[(n * size) % len(ids):][:size]]
        answer = http.patch(url, json={"allOrNone": False, "records": batch}, timeout=60)
        assert answer.status_code == 200, answer.text[:300]
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    print(f"  Collections PATCHes of {size}: {requests_n / elapsed:,.0f} per s "
          f"({requests_n / cpu:,.0f} per CPU-second, client included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--collections", type=int, default=20_000)
    parser.add_argument("--no-streaming", action="store_true")
    args = parser.parse_args()
    with DevOrg(host="127.0.0.1", port=0, orgs=1) as dev, requests.Session() as http:
        t0 = time.perf_counter()
        ids = setup(dev, http, args.records, not args.no_streaming)
        print(f"{len(ids):,} Accounts seeded in {time.perf_counter() - t0:.1f} s, "
              f"streaming {'off' if args.no_streaming else 'on'}, RSS {rss_mib():,.0f} MiB")
        ingest(dev, http, ids, "first")
        ingest(dev, http, ids, "second")
        if args.collections:
            collections(dev, http, ids, args.collections)
            small_patches(dev, http, ids, 2000, 5)


if __name__ == "__main__":
    main()
