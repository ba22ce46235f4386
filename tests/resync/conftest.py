"""Fixtures for the resync tests: a devorg with one provisioned org per test, a state
database, the bundled sample dataset as provider, and helpers to seed and read back.

devorg is driven only over HTTP (Salesforce API and its admin API)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from ilyd.devorg import DevOrg, OrgInfo
from ilyd.enrich.dataset import DatasetProvider
from ilyd.enrich.dataset_settings import DatasetSettings, sample_dataset_path
from ilyd.provision.service import Provisioner
from ilyd.resync.checkpoint import ResyncStore
from ilyd.resync.engine import Resync, ResyncSettings
from ilyd.salesforce.auth import make_token_provider
from ilyd.salesforce.bulk import PollPolicy
from ilyd.salesforce.http import RetryPolicy
from ilyd.salesforce.rest import RestClient
from ilyd.store import Database
from ilyd.store.record_hashes import RecordHashStore
from tests.helpers.devorg_process import devorg_fixture

FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)
# Small pages and uploads: a few thousand records cross several pages and jobs.
FAST = ResyncSettings(page_size=700, rest_threshold=200, chunk=250,
                      max_upload_bytes=60_000,
                      poll=PollPolicy(initial=0.02, factor=1.5, max_interval=0.1),
                      budget_probe_seconds=0.05, lock_retry_delay=0.02, transient_delay=0.02)
ORGS_PER_MODULE = 8
SAMPLE_DOMAINS = ("acme.example", "globex.test")


class Admin:
    """The devorg admin API (ilyd/devorg/ADMIN.md) for one org."""

    def __init__(self, base: str, org: OrgInfo) -> None:
        self.base, self.org = base.rstrip("/"), org
        self.http = requests.Session()

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"{self.base}{path}", json=body, timeout=60)
        assert response.status_code < 300, (method, path, response.text)
        return response.json() if response.content else None

    def seed(self, sobject: str, count: int) -> Any:
        return self.call("POST", f"/orgs/{self.org.name}/seed",
                         {"sobject": sobject, "count": count})

    def calls(self) -> dict[str, Any]:
        return self.call("GET", f"/orgs/{self.org.name}/calls")

    def set_calls_used(self, used: int) -> Any:
        return self.call("PATCH", f"/orgs/{self.org.name}/calls", {"used": used})

    def reset_calls(self) -> Any:
        return self.call("DELETE", f"/orgs/{self.org.name}/calls")

    def fault(self, **spec: Any) -> Any:
        return self.call("POST", "/faults", {"org": self.org.name, **spec})

    def clear_faults(self) -> Any:
        return self.call("DELETE", "/faults")

    def history(self, record_id: str) -> list[dict[str, Any]]:
        return self.call("GET", f"/orgs/{self.org.name}/records/{record_id}/history")

    def update_as_user(self, sobject: str, record_id: str, values: dict[str, Any]) -> Any:
        """Write as the org's second (human) user."""
        return self.call("PATCH", f"/orgs/{self.org.name}/records/{sobject}/{record_id}", values)


@dataclass
class OrgEnv:
    """One provisioned devorg org and everything a resync of it needs."""

    info: OrgInfo
    admin: Admin
    rest: RestClient
    db: Database
    provider: DatasetProvider
    user_id: str

    def resync(self, settings: ResyncSettings = FAST, **extra: Any) -> Resync:
        """A Resync engine for this org over the test's state database."""
        return Resync(self.info.name, self.rest, self.provider, store=ResyncStore(self.db),
                      hashes=RecordHashStore(self.db), settings=settings,
                      integration_user_id=self.user_id, export_metrics=False, **extra)

    def ily_writes(self, record_id: str) -> int:
        """How many times the integration user wrote Ily fields of the record."""
        return sum(1 for h in self.admin.history(record_id)
                   if h.get("user_id") == self.user_id
                   and any(str(f).startswith("Ily_") for f in h.get("changed_fields") or ()))

    def all_records(self, sobject: str, fields: str) -> list[dict[str, Any]]:
        where = " WHERE IsConverted = false" if sobject == "Lead" else ""
        return list(self.rest.query(f"SELECT Id, {fields} FROM {sobject}{where}"))  # noqa: S608

    def add_sample_accounts(self, count: int) -> list[str]:
        """Accounts whose Website is a company in the bundled sample (Matched)."""
        ids: list[str] = []
        for start in range(0, count, 200):
            batch = [{"Name": f"Sample {n}",
                      "Website": f"https://www.{SAMPLE_DOMAINS[n % len(SAMPLE_DOMAINS)]}"}
                     for n in range(start, min(count, start + 200))]
            ids += [r.id for r in self.rest.create_collection("Account", batch) if r.id]
        return ids


# One devorg per test module, one fresh org of it per test (`env`).
dev = devorg_fixture(scope="module", orgs=ORGS_PER_MODULE)


@pytest.fixture(scope="module")
def next_org() -> Iterator[int]:
    """The index of the module's devorg org the next test takes."""
    return itertools.count()


@pytest.fixture(scope="module")
def provider() -> Iterator[DatasetProvider]:
    """The bundled synthetic sample of 3,000 companies."""
    dataset = DatasetProvider(DatasetSettings(path=sample_dataset_path()))
    yield dataset
    dataset.close()


@pytest.fixture
def env(dev: DevOrg, next_org: Iterator[int], provider: DatasetProvider,
        tmp_path: Path) -> Iterator[OrgEnv]:
    """A fresh org, provisioned (Ily fields with FLS), with a state database."""
    info = dev.orgs[next(next_org)]
    tokens = make_token_provider("refresh_token", login_url=info.login_url,
                                 client_id=info.client_id, client_secret=info.client_secret,
                                 refresh_token=info.refresh_token, org=info.name,
                                 retry=FAST_RETRY)
    rest = RestClient(info.name, tokens, retry=FAST_RETRY, export_usage=False)
    Provisioner(info.name, rest, objects=("Account", "Lead"), api_version="62.0").provision()
    rest.forget_describe()
    admin = Admin(dev.admin, info)
    db = Database(tmp_path / "state.db")
    yield OrgEnv(info, admin, rest, db, provider, rest.token.user_id)
    admin.clear_faults()
    rest.close()
    db.close()
