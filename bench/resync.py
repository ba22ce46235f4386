"""Complete database sync benchmark: N Accounts in devorg, resync from cold.

Prints, per N: records/s end to end, API calls used (devorg's own count), Bulk batches
used (DailyBulkApiBatches), and the peak RSS of the process that ran the resync (a
child process, so devorg's memory is not counted). Then the naive approach on
--naive-count records: simple-salesforce query_all plus one PATCH per record.

    .venv/bin/python bench/resync.py                  # 100,000 and 1,000,000
    .venv/bin/python bench/resync.py --counts 20000 --naive-count 5000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from ilyd.devorg import DevOrg, OrgInfo
from ilyd.enrich.dataset import DatasetProvider
from ilyd.enrich.dataset_settings import DatasetSettings, sample_dataset_path
from ilyd.enrich.values import enrich_record
from ilyd.provision.service import Provisioner
from ilyd.resync.checkpoint import ResyncStore
from ilyd.resync.compare import json_value
from ilyd.resync.engine import Resync, ResyncRequest
from ilyd.salesforce.auth import make_token_provider
from ilyd.salesforce.rest import RestClient
from ilyd.store import Database
from ilyd.store.record_hashes import RecordHashStore


def _rest(info: OrgInfo, ca_file: Path | None = None) -> RestClient:
    tokens = make_token_provider("refresh_token", login_url=info.login_url,
                                 client_id=info.client_id, client_secret=info.client_secret,
                                 refresh_token=info.refresh_token, org=info.name,
                                 ca_file=ca_file)
    return RestClient(info.name, tokens, export_usage=False, ca_file=ca_file)


def _provider() -> DatasetProvider:
    return DatasetProvider(DatasetSettings(path=sample_dataset_path()))


def child(args: list[str]) -> None:
    """Run one resync (in its own process) and print its figures as JSON."""
    info = OrgInfo(**json.loads(args[0]))
    rest = _rest(info)
    database = Database(args[1])
    engine = Resync(info.name, rest, _provider(), store=ResyncStore(database),
                    hashes=RecordHashStore(database), integration_user_id=rest.token.user_id,
                    export_metrics=False)
    engine.begin(ResyncRequest(("Account",)))
    started = time.perf_counter()
    if len(args) > 2:
        import cProfile

        cProfile.runctx("engine.run()", globals(), locals(), args[2])
    else:
        engine.run()
    assert engine.progress is not None
    result = engine.progress.snapshot()
    result["seconds"] = time.perf_counter() - started
    result["peak_rss_kib"] = _peak_rss_kib()
    usage = os.times()
    result["cpu_seconds"] = usage.user + usage.system
    print(json.dumps(result))


def _peak_rss_kib() -> int:
    """This process's peak RSS since its exec (VmHWM). Not getrusage: its maxrss (and
    RUSAGE_CHILDREN's) keeps the forked parent's RSS from before the exec — devorg's
    records — which is not the resync's memory."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _calls(dev: DevOrg, info: OrgInfo, http: requests.Session | None = None) -> int:
    response = (http or requests).get(f"{dev.admin}/orgs/{info.name}/calls", timeout=30)
    return int(response.json()["used"])


def _batches_left(rest: RestClient) -> int:
    return int(rest.limits()["DailyBulkApiBatches"]["Remaining"])


def bulk_case(dev: DevOrg, info: OrgInfo, count: int) -> None:
    """Seed `count` Accounts, resync them in a child process, print the figures."""
    rest = _rest(info)
    Provisioner(info.name, rest, objects=("Account",), api_version="62.0").provision()
    requests.post(f"{dev.admin}/orgs/{info.name}/seed",
                  json={"sobject": "Account", "count": count}, timeout=600).raise_for_status()
    batches = _batches_left(rest)
    calls = _calls(dev, info)
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, __file__, "--child",
                              json.dumps(info.__dict__), str(Path(tmp) / "state.db")],
                             check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    used_calls = _calls(dev, info) - calls
    used_batches = batches - _batches_left(rest)
    print(f"resync {count:>9,} Accounts: {result['phase']}, written {result['written']:,},"
          f" {result['seconds']:.1f} s ({result['cpu_seconds']:.1f} s CPU in ilyd),"
          f" {count / result['seconds']:,.0f} records/s,"
          f" {used_calls} API calls ({used_calls * 1_000_000 / count:.0f} per million),"
          f" {used_batches} Bulk batches, peak RSS {result['peak_rss_kib'] / 1024:.0f} MiB",
          flush=True)


def naive_case(count: int) -> None:
    """simple-salesforce: query_all, then one PATCH per record (its own TLS devorg:
    simple-salesforce speaks https only)."""
    from simple_salesforce import Salesforce

    with DevOrg(host="127.0.0.1", port=0, orgs=1, sandbox_orgs=0, tls=True) as dev:
        info = dev.orgs[0]
        rest = _rest(info, dev.ca_file)
        Provisioner(info.name, rest, objects=("Account",), api_version="62.0").provision()
        requests.post(f"{dev.admin}/orgs/{info.name}/seed", json={"sobject": "Account",
                      "count": count}, timeout=600, verify=str(dev.ca_file)).raise_for_status()
        # One call per record: a real org's daily allowance (15,000 here) would stop it.
        requests.patch(f"{dev.admin}/orgs/{info.name}/settings",
                       json={"api_limit": 10 * count + 15_000}, timeout=30,
                       verify=str(dev.ca_file)).raise_for_status()
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE would replace devorg's CA
        session.verify = str(dev.ca_file)
        token = rest.token
        sf = Salesforce(session_id=token.access_token, instance_url=token.instance_url,
                        session=session, version="62.0")
        provider = _provider()
        calls = _calls(dev, info, session)
        started = time.perf_counter()
        for record in sf.query_all_iter("SELECT Id, Website FROM Account"):
            outcome = enrich_record("Account", record, provider)
            sf.Account.update(record["Id"], {k: json_value(v)
                                             for k, v in outcome.values.items()})
        seconds = time.perf_counter() - started
        used = _calls(dev, info, session) - calls
    print(f"naive  {count:>9,} Accounts (simple-salesforce, PATCH per record): "
          f"{seconds:.1f} s, {count / seconds:,.0f} records/s, {used:,} API calls "
          f"({used * 1_000_000 / count:,.0f} per million), 0 Bulk batches", flush=True)


def main() -> None:
    """Parse arguments, run the cases."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--naive-count", type=int, default=100_000)
    args = parser.parse_args()
    for count in args.counts:
        # A devorg per case: one case's records do not slow the next one down.
        with DevOrg(host="127.0.0.1", port=0, orgs=1, sandbox_orgs=0) as dev:
            bulk_case(dev, dev.orgs[0], count)
    if args.naive_count:
        naive_case(args.naive_count)


if __name__ == "__main__":
    main()
