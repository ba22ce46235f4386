"""`ilyd ctl cache show --domain D`: a company's cached technographics with their evidence.

A real DNS lookup (bench zone on loopback) is stored in a real provider cache (SQLite) and
read back the way the control verb does, then rendered the way `ilyd ctl` prints it.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

from ilyd.enrich.dns_provider import DnsProvider, DnsSettings
from ilyd.pipeline.cache_render import cache_args, cache_arguments, render_cache
from ilyd.pipeline.cache_verbs import cached_answers
from ilyd.store.cache import ProviderCache
from ilyd.store.db import Database
from tests.enrich.conftest import ZoneServer
from tests.helpers.store import database_fixture

ZONE = Path(__file__).resolve().parents[2] / "bench" / "data" / "technographics.zone"


database = database_fixture()


@pytest.fixture
def cache(database: Database) -> ProviderCache:
    return ProviderCache(database)


@pytest.fixture
def zone() -> Iterator[ZoneServer]:
    server = ZoneServer(ZONE.read_text("utf-8"))
    yield server
    server.stop()


def test_show_gives_each_cached_product_with_the_record_behind_it(zone, cache):
    provider = DnsProvider(DnsSettings(nameservers=("127.0.0.1",), port=zone.port))
    cache.put(provider.lookup("northwind.example"), ttl_seconds=3600)
    answers = cached_answers(cache, "northwind.example")
    assert [(a["provider"], a["found"]) for a in answers] == [("dns", True)]
    assert answers[0]["values"]["Ily_CDN_Provider__c"] == "Cloudflare"
    text = render_cache({"action": "show", "domain": "northwind.example", "answers": answers})
    lines = text.splitlines()
    assert lines[0] == "dns: found"
    assert "  Ily_Email_Provider__c = Google Workspace" in lines
    assert "    MX aspmx.l.google.com -> Google Workspace (email_provider)" in lines
    assert ("    A 104.21.48.1 in Cloudflare's published ranges (104.16.0.0/13) -> "
            "Cloudflare (cdn)") in lines
    assert "    SPF servers.mcsv.net -> Mailchimp (email_sending)" in lines


def test_show_for_a_domain_nothing_was_cached_for_says_so(cache):
    answers = cached_answers(cache, "unknown.example")
    assert answers == []
    assert render_cache({"action": "show", "domain": "unknown.example",
                         "answers": answers}) == "no cached answers for unknown.example"


def test_show_needs_a_domain_and_stats_takes_none(capsys):
    parser = argparse.ArgumentParser()
    cache_arguments(parser)
    assert cache_args(parser.parse_args(["show", "--domain", "acme.test"])) == {
        "action": "show", "domain": "acme.test"}
    for argv in (["show"], ["stats", "--domain", "acme.test"]):
        with pytest.raises(SystemExit) as err:
            cache_args(parser.parse_args(argv))
        assert err.value.code == 2
    assert "show needs --domain" in capsys.readouterr().err
