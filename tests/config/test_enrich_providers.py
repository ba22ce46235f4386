"""`[[…enrich.provider]]` of type http and dns, and cache TTLs: each mistake with its key
path, secrets only by reference, and the org reading the provider's key at start."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ilyd.actors.context import OrgSecrets
from ilyd.config import SecretKind, load_config
from ilyd.enrich.dns_provider import DnsSettings
from ilyd.enrich.http_provider import HttpSettings
from ilyd.errors import ConfigError

from .conftest import GOOD_ORG

WriteConfig = Callable[[str], Path]

HTTP = """
[[org.enrich.provider]]
type = "http"
name = "vendor"
url = "https://api.vendor.example/v2/companies/find?domain={domain}"
auth_header = "Authorization"
auth_prefix = "Bearer "
secret_file = "vendor.key"
fields = { Ily_Company_Name__c = "name", Ily_Employee_Count__c = "metrics.employees" }
"""


@pytest.fixture
def vendor_key(tmp_path: Path) -> Path:
    path = tmp_path / "vendor.key"
    path.write_text("vendor-api-key\n")
    path.chmod(0o600)
    return path


def problems_of(write_config: WriteConfig, text: str) -> list[str]:
    return list(load_config(write_config(GOOD_ORG + text)).problems())


def test_an_http_dns_dataset_chain_loads_with_its_settings_and_default_ttls(
        write_config, secret_file, vendor_key):
    text = HTTP + """timeout = 3
requests_per_second = 2.5
max_concurrency = 2
cache_ttl = 3600
negative_cache_ttl = 0

[[org.enrich.provider]]
type = "dns"
nameservers = ["127.0.0.1", "::1"]
port = 5353
query_timeout = 0.5
budget = 4
max_concurrency = 8

[[org.enrich.provider]]
type = "dataset"
path = "@sample"
"""
    config = load_config(write_config(GOOD_ORG + text))
    assert config.problems() == ()
    vendor, dns, dataset = config.orgs[0].enrich.providers
    assert (vendor.type, vendor.name, vendor.cache_ttl, vendor.negative_cache_ttl) == (
        "http", "vendor", 3600.0, 0.0)
    assert isinstance(vendor.settings, HttpSettings)
    assert vendor.settings.secret is None  # only the reference is in the config
    assert vendor.settings.fields == {"Ily_Company_Name__c": "name",
                                      "Ily_Employee_Count__c": "metrics.employees"}
    assert (vendor.settings.timeout_seconds, vendor.settings.requests_per_second,
            vendor.settings.max_concurrency) == (3.0, 2.5, 2)
    assert vendor.secret is not None
    assert vendor.secret.kind is SecretKind.FILE
    assert vendor.secret.location == str(vendor_key)  # relative to the config file
    assert isinstance(dns.settings, DnsSettings)
    assert dns.settings.nameservers == ("127.0.0.1", "::1")
    assert (dns.settings.port, dns.settings.query_timeout_seconds,
            dns.settings.budget_seconds, dns.settings.max_concurrency) == (5353, 0.5, 4.0, 8)
    assert (dns.cache_ttl, dns.negative_cache_ttl) == (7 * 86400, 86400)
    assert (dataset.cache_ttl, dataset.negative_cache_ttl) == (0, 0)


def test_the_org_reads_the_provider_key_when_it_starts(write_config, secret_file, vendor_key):
    (org,) = load_config(write_config(GOOD_ORG + HTTP)).orgs
    secrets = OrgSecrets.read(org)
    assert secrets.providers == (("vendor", "vendor-api-key"),)
    assert "vendor-api-key" not in repr(secrets)


def test_an_inline_api_key_is_rejected_with_the_fix(write_config, secret_file, vendor_key):
    problems = problems_of(write_config, HTTP + 'api_key = "abc123"\n')
    assert len(problems) == 1
    assert problems[0].startswith("org[0].enrich.provider[0].api_key: secrets are never"
                                  " written inline")
    assert "secret_file" in problems[0]
    assert "abc123" not in problems[0]


def test_a_credential_header_is_rejected_as_an_inline_secret(
        write_config, secret_file, vendor_key):
    problems = problems_of(write_config, HTTP + 'headers = { "X-Api-Key" = "abc123" }\n')
    assert len(problems) == 1
    assert problems[0].startswith("org[0].enrich.provider[0].headers.X-Api-Key: carries a"
                                  " credential")
    assert "abc123" not in problems[0]


@pytest.mark.parametrize(("extra", "expected"), [
    ('timout = 3\n', "org[0].enrich.provider[0].timout: unknown key (did you mean timeout?)"),
    ('method = "PUT"\n', "org[0].enrich.provider[0].method: must be one of 'GET', 'POST'"),
    ('max_concurrency = 0\n', "org[0].enrich.provider[0].max_concurrency: must be at least 1"),
    ('cache_ttl = -1\n', "org[0].enrich.provider[0].cache_ttl: must be at least 0"),
    ('negative_cache_ttl = "1d"\n',
     "org[0].enrich.provider[0].negative_cache_ttl: must be a number"),
    ('result_path = "data..company"\n',
     "org[0].enrich.provider[0].result_path: response path 'data..company': empty key"),
    ('batch = { url = "https://api.vendor.example/bulk" }\n',
     "org[0].enrich.provider[0].batch.url: must contain {domains}"),
    ('batch = { url = "https://api.vendor.example/bulk?d={domains}", max_domains = 0 }\n',
     "org[0].enrich.provider[0].batch.max_domains: must be at least 1"),
    ('secret_env = "VENDOR_KEY"\n',
     "org[0].enrich.provider[0]: set only one of secret_file, secret_env"),
])
def test_each_http_mistake_is_reported_with_its_key_path(
        write_config, secret_file, vendor_key, extra, expected):
    problems = problems_of(write_config, HTTP + extra)
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems


def test_a_mistyped_field_name_suggests_the_ily_field(write_config, secret_file, vendor_key):
    text = HTTP.replace('Ily_Company_Name__c = "name"', 'Ily_Company_Nme__c = "name"')
    assert problems_of(write_config, text) == [
        "org[0].enrich.provider[0].fields.Ily_Company_Nme__c: not an Ily field"
        " (did you mean Ily_Company_Name__c?)"]


def test_a_field_ilyd_writes_itself_cannot_be_mapped(write_config, secret_file, vendor_key):
    text = HTTP.replace('Ily_Company_Name__c = "name"', 'Ily_Source__c = "name"')
    (problem,) = problems_of(write_config, text)
    assert problem.startswith("org[0].enrich.provider[0].fields.Ily_Source__c: is written by"
                              " ilyd itself")


def test_plain_http_is_refused_off_loopback(write_config, secret_file, vendor_key):
    text = HTTP.replace("https://api.vendor.example", "http://api.vendor.example")
    (problem,) = problems_of(write_config, text)
    assert problem.startswith("org[0].enrich.provider[0].url: must use https://")


def test_a_get_url_without_the_domain_placeholder_is_refused(
        write_config, secret_file, vendor_key):
    text = HTTP.replace("?domain={domain}", "")
    (problem,) = problems_of(write_config, text)
    assert problem.startswith("org[0].enrich.provider[0].url: must contain {domain}")


def test_an_auth_location_without_a_secret_is_reported(write_config, secret_file):
    text = HTTP.replace('secret_file = "vendor.key"\n', "")
    (problem,) = problems_of(write_config, text)
    assert problem.startswith("org[0].enrich.provider[0]: auth_header / auth_query needs")


def test_a_missing_secret_file_is_reported_at_load_with_its_key_path(
        write_config, secret_file):
    (problem,) = problems_of(write_config, HTTP)
    assert problem.startswith("org[0].enrich.provider[0].secret_file: secret file")
    assert "does not exist" in problem


def test_a_world_readable_secret_file_is_reported(write_config, secret_file, vendor_key):
    vendor_key.chmod(0o644)
    (problem,) = problems_of(write_config, HTTP)
    assert "world-readable" in problem
    assert problem.startswith("org[0].enrich.provider[0].secret_file:")


@pytest.mark.parametrize(("extra", "expected"), [
    ('nameservers = ["dns.google"]\n',
     "org[0].enrich.provider[0].nameservers: must be IP addresses, not host names"),
    ('port = 70000\n', "org[0].enrich.provider[0].port: must be at most 65535"),
    ('query_timeout = 3\nbudget = 1\n',
     "org[0].enrich.provider[0].budget: must be at least query_timeout"),
    ('budgt = 5\n', "org[0].enrich.provider[0].budgt: unknown key (did you mean budget?)"),
])
def test_each_dns_mistake_is_reported_with_its_key_path(
        write_config, secret_file, extra, expected):
    text = '\n[[org.enrich.provider]]\ntype = "dns"\n' + extra
    (problem,) = problems_of(write_config, text)
    assert problem.startswith(expected), problem


def test_every_mistake_of_every_provider_is_reported_at_once(write_config, secret_file):
    text = """
[[org.enrich.provider]]
type = "whois"

[[org.enrich.provider]]
type = "dns"
port = 0

[[org.enrich.provider]]
type = "dataset"
pth = "companies.csv"
cache_ttl = -5
"""
    problems = problems_of(write_config, text)
    assert problems == [
        "org[0].enrich.provider[0].type: must be one of dataset, http, dns (got 'whois')",
        "org[0].enrich.provider[1].port: must be at least 1 (got 0)",
        "org[0].enrich.provider[2].cache_ttl: must be at least 0 (got -5)",
        "org[0].enrich.provider[2].pth: unknown key (did you mean 'path'?)",
        'org[0].enrich.provider[2].path: missing; name the dataset file (or "@sample")',
    ]


def test_two_providers_with_one_name_are_refused(write_config, secret_file):
    text = '\n[[org.enrich.provider]]\ntype = "dns"\n' * 2
    assert problems_of(write_config, text) == [
        "org[0].enrich.provider: names must be unique in a chain (set name = …): dns"]


def test_defaults_problems_carry_their_key_path(write_config, secret_file):
    text = '[[defaults.enrich.provider]]\ntype = "dns"\nnameservrs = ["127.0.0.1"]\n' + GOOD_ORG
    with pytest.raises(ConfigError) as info:
        load_config(write_config(text))
    assert info.value.problems == [
        "defaults.enrich.provider[0].nameservrs: unknown key (did you mean nameservers?)"]
