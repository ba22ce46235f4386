"""The DNS provider against a real DNS server on loopback serving company-like zones."""

from __future__ import annotations

import pytest

from ilyd.enrich.dns_provider import (
    EVIDENCE_FIELD,
    DnsProvider,
    DnsSettings,
    build_resolver,
)
from ilyd.enrich.dns_records import RecordCollector
from ilyd.enrich.provider import Provider
from ilyd.errors import ProviderError
from ilyd.metrics import REGISTRY


def settings(port: int, **overrides: object) -> DnsSettings:
    values: dict[str, object] = {
        "name": "dns", "nameservers": ("127.0.0.1",), "port": port,
        "query_timeout_seconds": 1.0, "budget_seconds": 5.0,
    }
    values.update(overrides)
    return DnsSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def provider(dns_server) -> DnsProvider:
    return DnsProvider(settings(dns_server.port))


def without_evidence(values):
    return {k: v for k, v in values.items() if k != EVIDENCE_FIELD}


def test_dns_provider_satisfies_the_provider_contract(provider):
    assert isinstance(provider, Provider)


def test_google_workspace_with_cloudflare_dns_and_cdn(provider):
    lookup = provider.lookup("acme.test")
    assert lookup.found
    assert not lookup.invalid
    assert without_evidence(lookup.values) == {
        "Ily_Email_Provider__c": "Google Workspace",
        "Ily_Email_Sending_Services__c": "SendGrid",
        "Ily_DNS_Provider__c": "Cloudflare",
        "Ily_CDN_Provider__c": "Cloudflare",
        "Ily_SaaS_Products__c": "Google Search Console; Atlassian Cloud",
        "Ily_Technologies__c":
            "Google Workspace; SendGrid; Cloudflare; Google Search Console; Atlassian Cloud",
    }


def test_microsoft_365_behind_proofpoint_on_azure(provider):
    values = provider.lookup("initech.test").values
    assert values["Ily_Email_Security_Provider__c"] == "Proofpoint"
    # the MX points at the gateway, so the mailbox provider comes from SPF
    assert values["Ily_Email_Provider__c"] == "Microsoft 365"
    assert values["Ily_DNS_Provider__c"] == "Azure DNS"
    assert values["Ily_Cloud_Hosting_Provider__c"] == "Microsoft Azure"
    assert values["Ily_SaaS_Products__c"] == "Microsoft 365"


def test_amazon_ses_cloudfront_route53_and_ec2_with_legacy_google_mx(provider):
    values = provider.lookup("globex.test").values
    assert values["Ily_Email_Provider__c"] == "Google Workspace"
    assert values["Ily_Email_Sending_Services__c"] == "Amazon SES; Mailchimp"
    assert values["Ily_DNS_Provider__c"] == "Amazon Route 53"
    assert values["Ily_CDN_Provider__c"] == "Amazon CloudFront"
    assert values["Ily_Cloud_Hosting_Provider__c"] == "Amazon Web Services"
    assert "PTR ec2-203-0-113-7.compute-1.amazonaws.com -> Amazon Web Services" in (
        values[EVIDENCE_FIELD])


def test_microsoft_365_on_the_dane_mx_host_name(provider):
    assert provider.lookup("hooli.test").values["Ily_Email_Provider__c"] == "Microsoft 365"


def test_evidence_lists_every_matched_record(provider):
    lookup = provider.lookup("acme.test")
    assert lookup.evidence == lookup.values[EVIDENCE_FIELD]
    assert lookup.evidence.splitlines() == [
        "MX smtp.google.com -> Google Workspace (email_provider)",
        "SPF sendgrid.net -> SendGrid (email_sending)",
        "NS ada.ns.cloudflare.com -> Cloudflare (dns)",
        "NS bob.ns.cloudflare.com -> Cloudflare (dns)",
        "CNAME www.acme.test.cdn.cloudflare.net -> Cloudflare (cdn)",
        "TXT google-site-verification=q1w2e3r4t5y6 -> Google Search Console (saas)",
        "TXT atlassian-domain-verification=Zx9Yw8Vu7 -> Atlassian Cloud (saas)",
    ]


def test_lookalike_host_names_match_nothing(provider):
    lookup = provider.lookup("notgoogle.test")
    assert (lookup.found, lookup.invalid, dict(lookup.values)) == (False, False, {})


def test_nxdomain_is_an_invalid_domain(provider):
    lookup = provider.lookup("nosuchcompany.test")
    assert (lookup.found, lookup.invalid) == (False, True)


def test_servfail_is_retryable(dns_server, provider):
    dns_server.servfail("broken.test")
    before = REGISTRY.get_sample_value(
        "ilyd_provider_failures_total", {"provider": "dns", "reason": "servfail"}) or 0
    with pytest.raises(ProviderError) as err:
        provider.lookup("broken.test")
    assert (err.value.retryable, err.value.reason) == (True, "servfail")
    assert "broken.test" in str(err.value)
    after = REGISTRY.get_sample_value(
        "ilyd_provider_failures_total", {"provider": "dns", "reason": "servfail"})
    assert after - before == 1


def test_a_slow_server_times_out_as_retryable(dns_server):
    dns_server.slow("slow.test")
    provider = DnsProvider(settings(dns_server.port, query_timeout_seconds=0.2,
                                    budget_seconds=0.5))
    with pytest.raises(ProviderError) as err:
        provider.lookup("slow.test")
    assert (err.value.retryable, err.value.reason) == (True, "timeout")


def test_a_failing_related_name_only_leaves_its_evidence_out(dns_server, provider):
    dns_server.servfail("www.acme.test")
    values = provider.lookup("acme.test").values
    assert "Ily_CDN_Provider__c" not in values
    assert values["Ily_Email_Provider__c"] == "Google Workspace"


def test_spf_includes_stop_at_the_rfc_7208_limit_of_ten_lookups(dns_server, provider):
    collector = RecordCollector(build_resolver(settings(dns_server.port)), 1.0, 5.0)
    spf = collector.collect("chain.test").spf
    assert spf is not None
    assert spf.lookups == 10
    assert spf.truncated
    assert "l11.chain.test" in spf.domains  # named by l10, but never fetched
    values = provider.lookup("chain.test").values
    # sendgrid.net is named in l1's record; mailgun.org only behind the 11th lookup
    assert values["Ily_Email_Sending_Services__c"] == "SendGrid"


def test_an_spf_include_loop_ends(provider):
    assert provider.lookup("loop.test").found is False


def test_lookups_are_counted(provider):
    before = REGISTRY.get_sample_value("ilyd_provider_requests_total", {"provider": "dns"}) or 0
    provider.lookup("acme.test")
    after = REGISTRY.get_sample_value("ilyd_provider_requests_total", {"provider": "dns"})
    assert after - before == 1


def test_lookup_many_returns_lookups_and_errors(dns_server, provider):
    dns_server.servfail("broken.test")
    results = provider.lookup_many(["acme.test", "nosuchcompany.test", "broken.test"])
    assert results["acme.test"].found
    assert results["nosuchcompany.test"].invalid
    assert isinstance(results["broken.test"], ProviderError)


def test_explicit_servers_and_port_replace_the_system_configuration():
    resolver = build_resolver(DnsSettings(nameservers=("127.0.0.2", "127.0.0.3"), port=5353,
                                          query_timeout_seconds=0.7))
    assert [str(ns) for ns in resolver.nameservers] == ["127.0.0.2", "127.0.0.3"]
    assert resolver.port == 5353
    assert resolver.timeout == 0.7
