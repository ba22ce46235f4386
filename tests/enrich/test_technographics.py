"""DNS technographics an admin would sign: measured on the bench zone, served over real DNS.

The zone (bench/data/technographics.zone) holds company-like domains set up the way the
vendors' guides say; bench/data/technographics_truth.toml is what an admin concludes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ilyd.enrich.dns_provider import EVIDENCE_FIELD, DnsProvider, DnsSettings
from tests.enrich.conftest import ZoneServer
from tests.helpers import load_script

bench = load_script("bench/technographics.py", "bench_technographics")
GOAL_PRECISION, GOAL_RECALL, ZONE = bench.GOAL_PRECISION, bench.GOAL_RECALL, bench.ZONE
evaluate, load_truth, report = bench.evaluate, bench.load_truth, bench.report


@pytest.fixture(scope="module")
def zone() -> Iterator[ZoneServer]:
    server = ZoneServer(ZONE.read_text("utf-8"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def provider(zone: ZoneServer) -> DnsProvider:
    return DnsProvider(DnsSettings(nameservers=("127.0.0.1",), port=zone.port,
                                   query_timeout_seconds=2.0, budget_seconds=10.0))


def test_the_bench_zone_has_at_least_sixty_companies_each_with_ground_truth():
    truth = load_truth()
    assert len(truth) >= 60
    zone_text = ZONE.read_text("utf-8")
    assert all(f"\n{domain}." in zone_text for domain in truth)


def test_the_provider_meets_the_precision_and_recall_goal_on_the_bench_zone(zone):
    evaluation = evaluate(zone.port, load_truth())
    overall = evaluation.overall
    detail = report(evaluation) + "\n" + "\n".join(overall.misses)
    assert overall.precision >= GOAL_PRECISION, detail
    assert overall.recall >= GOAL_RECALL, detail


def test_a_zone_on_route_53_does_not_make_the_website_hosted_on_aws(provider):
    values = provider.lookup("mountain.test").values
    assert values["Ily_DNS_Provider__c"] == "Amazon Route 53"
    assert values["Ily_Cloud_Hosting_Provider__c"] == "Google Cloud"


@pytest.mark.parametrize("domain", ["fabrikam.example.com", "contoso.test", "meadow.example.com"])
def test_a_site_behind_a_cdn_on_a_cloud_s_dns_has_no_hosting_inferred(provider, domain):
    assert "Ily_Cloud_Hosting_Provider__c" not in provider.lookup(domain).values


def test_an_apex_in_cloudflare_s_published_ranges_is_cloudflare_with_the_range_as_evidence(
        provider):
    values = provider.lookup("northwind.example").values
    assert values["Ily_CDN_Provider__c"] == "Cloudflare"
    assert ("A 104.21.48.1 in Cloudflare's published ranges (104.16.0.0/13) -> Cloudflare "
            "(cdn)") in values[EVIDENCE_FIELD].splitlines()


def test_an_ec2_address_is_aws_hosting_and_a_cloudfront_address_is_the_cloudfront_cdn(
        provider):
    assert provider.lookup("gridline.test").values["Ily_Cloud_Hosting_Provider__c"] == (
        "Amazon Web Services")
    values = provider.lookup("fabrikam.example.com").values
    assert values["Ily_CDN_Provider__c"] == "Amazon CloudFront"
    assert "A 52.84.10.10 in Amazon CloudFront's published ranges" in values[EVIDENCE_FIELD]


def test_a_platform_s_documented_address_wins_over_the_cloud_range_it_sits_in(provider):
    values = provider.lookup("riverbend.example").values
    assert values["Ily_Cloud_Hosting_Provider__c"] == "Webflow"
    assert "A 75.2.70.75 -> Webflow (hosting)" in values[EVIDENCE_FIELD].splitlines()


def test_a_cdn_in_front_of_a_hosting_platform_still_shows_from_its_ranges(provider):
    values = provider.lookup("sunrise.test").values
    assert values["Ily_Cloud_Hosting_Provider__c"] == "Cloudflare Pages"
    assert values["Ily_CDN_Provider__c"] == "Cloudflare"


def test_ipv6_addresses_are_looked_up_in_the_published_ranges_too(provider):
    values = provider.lookup("sixnet.example").values
    assert values["Ily_CDN_Provider__c"] == "Cloudflare"
    assert "AAAA 2606:4700:3033::ac43:1 in Cloudflare's published ranges" in (
        values[EVIDENCE_FIELD])
