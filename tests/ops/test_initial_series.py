"""Series created at 0 before their first event: the daemon's, each provider's, and the
label values they are created with, kept equal to what the code reports."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from ilyd import metrics
from ilyd.enrich import dns_provider, http_provider
from ilyd.enrich.dataset import DatasetProvider, DatasetSettings
from ilyd.enrich.dns_provider import DnsProvider, DnsSettings
from ilyd.enrich.http_provider import HttpProvider, HttpSettings

from .conftest import ROOT


def _value(name: str, **labels: str) -> float | None:
    return metrics.REGISTRY.get_sample_value(name, labels)


def test_the_dataset_provider_counts_and_times_each_lookup_like_the_other_providers(
        tmp_path: Path) -> None:
    path = tmp_path / "companies.csv"
    path.write_text("domain,name\nacme.example,Acme\n", encoding="utf-8")
    provider = DatasetProvider(DatasetSettings(path=path, name="ds-count",
                                               mapping={"name": "Ily_Company_Name__c"}))
    assert _value("ilyd_provider_requests_total", provider="ds-count") == 0
    provider.lookup("acme.example")
    provider.lookup_many(["globex.example", "acme.example"])
    assert _value("ilyd_provider_requests_total", provider="ds-count") == 3
    assert _value("ilyd_provider_request_duration_seconds_count", provider="ds-count") == 3


def test_a_sqlite_dataset_exports_its_one_failure_reason_at_zero(tmp_path: Path) -> None:
    path = tmp_path / "companies.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE companies (domain TEXT PRIMARY KEY, name TEXT)")
    db.close()
    DatasetProvider(DatasetSettings(path=path, name="ds-sqlite",
                                    mapping={"name": "Ily_Company_Name__c"}))
    assert _value("ilyd_provider_failures_total", provider="ds-sqlite",
                  reason="dataset_unreadable") == 0


def test_http_and_dns_providers_export_every_failure_reason_at_zero_when_built() -> None:
    HttpProvider(HttpSettings(name="http-init", url="http://127.0.0.1:9/{domain}",
                              fields={"Ily_Company_Name__c": "name"}))
    DnsProvider(DnsSettings(name="dns-init"))
    for name, reasons in (("http-init", http_provider.FAILURE_REASONS),
                          ("dns-init", dns_provider.FAILURE_REASONS)):
        assert _value("ilyd_provider_requests_total", provider=name) == 0
        assert _value("ilyd_provider_request_duration_seconds_count", provider=name) == 0
        for reason in reasons:
            assert _value("ilyd_provider_failures_total", provider=name, reason=reason) == 0


def _reasons_in(module: Path, pattern: str) -> set[str]:
    return set(re.findall(pattern, module.read_text(encoding="utf-8")))


def test_provider_failure_reasons_are_the_ones_the_providers_report() -> None:
    enrich = ROOT / "ilyd" / "enrich"
    dns = _reasons_in(enrich / "dns_records.py", r'reason="(\w+)"')
    assert set(dns_provider.FAILURE_REASONS) == dns
    http = (_reasons_in(enrich / "http_provider.py", r'_fail\(\s*"(\w+)"')
            | _reasons_in(enrich / "http_provider.py", r'_TransientError\("(\w+)"')
            | _reasons_in(enrich / "http_provider.py", r'labels\(self\.name, "(\w+)"\)'))
    assert set(http_provider.FAILURE_REASONS) == http


def test_handshake_and_drop_reasons_created_at_start_are_the_ones_the_code_reports() -> None:
    from ilyd.pipeline.outcomes import DROP_REASONS
    from ilyd.salesforce.bayeux_messages import FailureKind

    assert set(metrics.HANDSHAKE_REASONS) == {"initial", "advice", "redeliver",
                                              *(str(kind) for kind in FailureKind)}
    assert set(metrics.DROP_REASONS) == {*DROP_REASONS.values(), "gave_up"}


def test_the_salesforce_failure_reasons_are_the_ones_the_clients_report() -> None:
    salesforce = ROOT / "ilyd" / "salesforce"
    answered = _reasons_in(salesforce / "http.py", r'return "(\w+)"')
    unanswered = _reasons_in(salesforce / "http.py", r'reason="(\w+)"')
    token = _reasons_in(salesforce / "auth.py", r'op="token", reason="(\w+)"')
    assert set(metrics.SF_FAILURE_REASONS) == answered | unanswered
    assert set(metrics.TOKEN_FAILURE_REASONS) == unanswered | token


_PREPARED = """
import json
from ilyd import metrics
metrics.prepare_daemon(one_process=True)
def value(name, **labels):
    return metrics.REGISTRY.get_sample_value(name, labels)
print(json.dumps({
    "connection": [value("ilyd_sf_request_failures_total", op=op, reason="connection")
                   for op in ("token", *metrics.STEADY_SF_OPS)],
    "reauth": value("ilyd_sf_request_failures_total", op="token", reason="reauth"),
    "unknown_client": value("ilyd_streaming_handshakes_total", reason="unknown_client"),
    "gave_up": value("ilyd_records_dropped_total", reason="gave_up"),
    "worker_up": value("ilyd_worker_up", worker="0"),
    "worker_restarts": value("ilyd_worker_restarts_total", worker="0"),
}))
"""


def test_prepare_daemon_creates_the_known_label_sets_at_zero_and_one_process_is_worker_0(
        ) -> None:
    # A fresh interpreter: this process's registry already counts other tests' requests.
    done = subprocess.run([sys.executable, "-c", _PREPARED], capture_output=True, text=True,
                          timeout=60, check=True)
    found = json.loads(done.stdout)
    assert found["connection"]
    assert all(v == 0 for v in found["connection"])
    assert found["reauth"] == 0
    assert found["unknown_client"] == 0
    assert found["gave_up"] == 0
    assert found["worker_up"] == 1
    assert found["worker_restarts"] == 0
