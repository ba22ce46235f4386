"""The provider chain: per field the first provider with a value wins; failures decided."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pytest

from ilyd.enrich.chain import ChainLookup, ProviderChain
from ilyd.enrich.http_provider import HttpProvider, HttpSettings
from ilyd.enrich.provider import Lookup, Provider
from ilyd.errors import ConfigError, ProviderError


class TableProvider:
    """A provider answering from a dict, or failing with a given error."""

    def __init__(self, name: str, table: Mapping[str, Mapping[str, object]],
                 error: ProviderError | None = None, invalid: bool = False) -> None:
        self.name = name
        self.table = table
        self.error = error
        self.invalid = invalid
        self.calls: list[str] = []
        self.closed = False

    def lookup(self, domain: str) -> Lookup:
        self.calls.append(domain)
        if self.error is not None:
            raise self.error
        values = self.table.get(domain)
        return Lookup(self.name, domain, found=bool(values), values=values or {},
                      evidence=f"{self.name} evidence" if values else None,
                      invalid=self.invalid)

    def lookup_many(self, domains: Iterable[str]) -> Mapping[str, Lookup | ProviderError]:
        return {d: self.lookup(d) for d in domains}

    def close(self) -> None:
        self.closed = True


VENDOR = TableProvider("vendor", {"acme.test": {
    "Ily_Company_Name__c": "Acme Corp", "Ily_DNS_Provider__c": "Vendor says Route 53",
    "Ily_Industry__c": "",
}})
DNS = TableProvider("dns", {"acme.test": {
    "Ily_DNS_Provider__c": "Cloudflare DNS", "Ily_Industry__c": None,
    "Ily_Email_Provider__c": "Google Workspace",
}})


def fresh(p: TableProvider, **changes: object) -> TableProvider:
    made = TableProvider(p.name, p.table)
    for k, v in changes.items():
        setattr(made, k, v)
    return made


def test_chain_satisfies_the_provider_contract():
    assert isinstance(ProviderChain([fresh(VENDOR)]), Provider)


def test_per_field_the_first_provider_with_a_value_wins_and_sources_say_who():
    result = ProviderChain([fresh(VENDOR), fresh(DNS)]).lookup("acme.test")
    assert isinstance(result, ChainLookup)
    assert result.values == {
        "Ily_Company_Name__c": "Acme Corp",
        "Ily_DNS_Provider__c": "Vendor says Route 53",
        "Ily_Email_Provider__c": "Google Workspace",
    }
    assert result.sources == {
        "Ily_Company_Name__c": "vendor", "Ily_DNS_Provider__c": "vendor",
        "Ily_Email_Provider__c": "dns",
    }
    assert result.provider == "vendor, dns"
    assert result.found
    assert not result.invalid
    assert result.evidence == "vendor: vendor evidence\ndns: dns evidence"


def test_order_decides_precedence():
    result = ProviderChain([fresh(DNS), fresh(VENDOR)]).lookup("acme.test")
    assert result.values["Ily_DNS_Provider__c"] == "Cloudflare DNS"
    assert result.sources["Ily_DNS_Provider__c"] == "dns"


def test_nobody_knowing_the_domain_is_not_found():
    result = ProviderChain([fresh(VENDOR), fresh(DNS)]).lookup("nobody.test")
    assert (result.found, result.invalid, result.provider, result.values) == (
        False, False, "", {})


def test_a_provider_proving_the_domain_does_not_exist_makes_it_invalid():
    result = ProviderChain([fresh(VENDOR), fresh(DNS, invalid=True)]).lookup("gone.test")
    assert result.invalid is True


def test_a_retryable_failure_stops_the_chain_so_the_record_waits():
    down = fresh(VENDOR, error=ProviderError("busy", retryable=True, reason="rate_limited",
                                             retry_after=30))
    dns = fresh(DNS)
    with pytest.raises(ProviderError) as err:
        ProviderChain([down, dns]).lookup("acme.test")
    assert (err.value.retryable, err.value.retry_after) == (True, 30)
    assert dns.calls == []


def test_a_rejected_domain_is_skipped_and_the_next_provider_answers():
    rejecting = fresh(VENDOR, error=ProviderError("422", retryable=False, reason="rejected"))
    result = ProviderChain([rejecting, fresh(DNS)]).lookup("acme.test")
    assert result.values["Ily_DNS_Provider__c"] == "Cloudflare DNS"
    assert result.skipped == {"vendor": "422"}


def test_when_the_only_provider_rejects_the_domain_its_error_is_raised():
    rejecting = fresh(VENDOR, error=ProviderError("422", retryable=False, reason="rejected"))
    with pytest.raises(ProviderError) as err:
        ProviderChain([rejecting]).lookup("acme.test")
    assert err.value.retryable is False


def test_a_failing_http_provider_is_skipped_and_records_wait_only_if_none_answers(http_stub):
    http_stub.route("/find/acme.test", http_stub.Reply(401, {"error": "bad key"}))
    http_stub.route("/find/globex.test", http_stub.Reply(401, {"error": "bad key"}))
    vendor = HttpProvider(HttpSettings(
        name="vendor", url=http_stub.base + "/find/{domain}",
        fields={"Ily_Company_Name__c": "name"}, auth_header="X-Api-Key", secret="k",
    ))
    dns = fresh(DNS)
    chain = ProviderChain([vendor, dns])
    first = chain.lookup("acme.test")
    assert first.values["Ily_Email_Provider__c"] == "Google Workspace"
    assert "HTTP 401" in first.skipped["vendor"]
    second = chain.lookup("globex.test")  # vendor not called again: it is failing
    assert "vendor" in second.skipped
    assert http_stub.hits("/find/globex.test") == 0
    assert chain.health.ok
    alone = ProviderChain([vendor])
    assert not alone.health.ok
    with pytest.raises(ProviderError) as err:
        alone.lookup("acme.test")
    assert (err.value.retryable, err.value.reason) == (True, "unavailable")
    chain.close()


def test_lookup_many_returns_errors_per_domain():
    flaky = fresh(VENDOR, error=ProviderError("busy", retryable=True))
    results = ProviderChain([flaky]).lookup_many(["acme.test", "globex.test"])
    assert all(isinstance(r, ProviderError) for r in results.values())


def test_close_closes_every_provider():
    a, b = fresh(VENDOR), fresh(DNS)
    ProviderChain([a, b]).close()
    assert a.closed
    assert b.closed


def test_an_empty_chain_or_duplicate_names_are_config_errors():
    with pytest.raises(ConfigError):
        ProviderChain([])
    with pytest.raises(ConfigError, match="vendor"):
        ProviderChain([fresh(VENDOR), fresh(VENDOR)])
