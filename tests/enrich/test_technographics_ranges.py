"""The published IP ranges: the shipped data files, the prefix trie and the refresh script."""

from __future__ import annotations

import ipaddress
import json
import random
import re

import pytest

from ilyd.enrich.ip_ranges import (
    IpRanges,
    RangeList,
    bundled_range_files,
    load_ip_ranges,
    parse_range_file,
)
from ilyd.enrich.signatures import Category
from ilyd.errors import ConfigError
from tests.helpers import load_script

refresh = load_script("scripts/refresh_ip_ranges.py", "refresh_ip_ranges")


@pytest.fixture(scope="module")
def shipped() -> dict[str, RangeList]:
    return {name.removeprefix("ip_ranges_").removesuffix(".txt"): parse_range_file(text, name)
            for name, text in bundled_range_files()}


def test_every_shipped_range_file_names_its_vendor_source_and_the_date_read(shipped):
    assert {r.product for r in shipped.values()} == {
        "Cloudflare", "Fastly", "Amazon CloudFront", "Amazon Web Services", "Google Cloud",
        "Microsoft Azure", "Azure Front Door", "Oracle Cloud", "DigitalOcean"}
    for ranges in shipped.values():
        assert ranges.sources
        assert all(s.startswith("https://") for s in ranges.sources)
        assert re.match(r"\d{4}-\d{2}-\d{2}", ranges.read)
        assert len(ranges.networks) >= 10


def test_cloudfront_is_a_cdn_apart_from_aws_hosting(shipped):
    assert shipped["aws_cloudfront"].category is Category.CDN
    assert shipped["aws"].category is Category.HOSTING
    assert not set(shipped["aws_cloudfront"].networks) & set(shipped["aws"].networks)


def test_a_range_file_without_source_or_with_a_bad_prefix_reports_every_problem():
    with pytest.raises(ConfigError) as err:
        parse_range_file("# product: X\n# category: cloud\n10.0.0.1/8\n", "bad.txt")
    text = str(err.value)
    assert "bad.txt line 3" in text
    assert "'# source: …' is missing" in text
    assert "'# read: …' is missing" in text
    assert "bad.txt: category" in text


def _ranges(*specs: tuple[str, Category, list[str]]) -> IpRanges:
    return IpRanges(RangeList(product, category, ("https://vendor.test",), "2026-01-01",
                              tuple(ipaddress.ip_network(n) for n in networks), product)
                    for product, category, networks in specs)


def test_the_longest_published_prefix_wins_and_a_cdn_wins_at_equal_length():
    ranges = _ranges(("Cloud", Category.HOSTING, ["10.0.0.0/8", "10.1.0.0/20"]),
                     ("Edge", Category.CDN, ["10.1.2.0/23", "10.1.0.0/20"]))
    assert ranges.lookup("10.200.0.1").product == "Cloud"
    assert ranges.lookup("10.1.3.255").network == "10.1.2.0/23"
    assert ranges.lookup("10.1.15.1").product == "Edge"
    assert ranges.lookup("10.1.16.1").product == "Cloud"
    assert ranges.lookup("11.0.0.1") is None
    assert ranges.lookup("not an address") is None


def test_ipv6_prefixes_of_any_length_are_found():
    ranges = _ranges(("Edge", Category.CDN, ["2001:db8:4700::/43", "2001:db8::/29"]))
    assert ranges.lookup("2001:db8:4710::1").network == "2001:db8:4700::/43"
    assert ranges.lookup("2001:db8:4720::1").network == "2001:db8::/29"
    assert ranges.lookup("2001:db9::1").network == "2001:db8::/29"
    assert ranges.lookup("2001:dc0::1") is None


def test_the_trie_agrees_with_a_linear_scan_of_the_shipped_ranges(shipped):
    ranges = load_ip_ranges()
    lists = list(shipped.values())
    rng = random.Random(11)
    inside = [next(iter(rng.choice(r.networks).hosts()), None) for r in lists for _ in range(12)]
    anywhere = [ipaddress.ip_address(rng.getrandbits(32)) for _ in range(100)]
    for address in [a for a in inside if a is not None] + anywhere:
        holders = [(n.prefixlen, r.category is Category.CDN, r.product) for r in lists
                   for n in r.networks if n.version == address.version and address in n]
        match = ranges.lookup(str(address))
        if not holders:
            assert match is None, address
        else:
            assert match is not None, address
            assert match.product == max(holders)[2], address


def _vendor_document(key: str, ranges: RangeList) -> list[str]:
    """The shipped networks written back in the vendor's own published format."""
    v4 = [str(n) for n in ranges.networks if n.version == 4]
    v6 = [str(n) for n in ranges.networks if n.version == 6]
    if key == "cloudflare":
        return ["\n".join(v4) + "\n", "\n".join(v6)]
    if key == "fastly":
        return [json.dumps({"addresses": v4, "ipv6_addresses": v6})]
    if key in ("aws", "aws_cloudfront"):
        service = "CLOUDFRONT" if key == "aws_cloudfront" else "EC2"
        return [json.dumps({
            "syncToken": "1", "createDate": "2026-10-26-00-00-00",
            "prefixes": [{"ip_prefix": p, "region": "us-east-1", "service": s}
                         for p in v4 for s in ("AMAZON", service)]
            + [{"ip_prefix": "192.0.2.0/24", "region": "GLOBAL", "service": "ROUTE53"}],
            "ipv6_prefixes": [{"ipv6_prefix": p, "region": "us-east-1", "service": service}
                              for p in v6]})]
    if key == "google_cloud":
        return [json.dumps({"prefixes": [{"ipv4Prefix": p, "service": "Google Cloud"}
                                         for p in v4]
                            + [{"ipv6Prefix": p, "service": "Google Cloud"} for p in v6]})]
    if key in ("azure", "azure_front_door"):
        tag = "AzureCloud" if key == "azure" else "AzureFrontDoor.Frontend"
        return [json.dumps({"cloud": "Public", "values": [
            {"name": "Storage", "properties": {"addressPrefixes": ["192.0.2.0/24"]}},
            {"name": tag, "properties": {"addressPrefixes": v4 + v6}}]})]
    if key == "oracle_cloud":
        return [json.dumps({"regions": [{"region": "us-ashburn-1",
                                         "cidrs": [{"cidr": p, "tags": ["OCI"]}
                                                   for p in v4 + v6]}]})]
    assert key == "digitalocean"
    return ["\n".join(f"{p},US,US-NY,New York,10001" for p in v4 + v6) + "\n"]


def test_the_refresh_script_parses_each_vendor_format_back_to_the_shipped_ranges(shipped):
    assert {s.key for s in refresh.SOURCES} == set(shipped)
    for source in refresh.SOURCES:
        ranges = shipped[source.key]
        networks = refresh.normalise(source.parse(_vendor_document(source.key, ranges)))
        assert networks == sorted(ranges.networks, key=lambda n: (n.version,
                                                                  n.network_address,
                                                                  n.prefixlen)), source.key
        written = parse_range_file(refresh.render(source, networks, "2026-12-07"), source.key)
        assert (written.product, written.category, written.sources, written.networks) == (
            ranges.product, ranges.category, ranges.sources, tuple(networks)), source.key
