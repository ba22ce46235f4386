"""Refresh ilyd/enrich/data/ip_ranges_*.txt from the CDNs' and clouds' published lists.

For maintainers, on a machine that reaches the vendors' URLs:

    python scripts/refresh_ip_ranges.py            # rewrite every file
    python scripts/refresh_ip_ranges.py fastly aws # only these

Each file is rewritten whole with the vendor's source URL and today's date in its
header; review the diff (a vendor dropping half its ranges is a reason to look before
committing) and update ilyd/enrich/data/README.md. Akamai, Hetzner and OVHcloud publish
no list, so they have no file.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import ipaddress
import json
import re
import sys
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "ilyd" / "enrich" / "data"
TIMEOUT_SECONDS = 60
AZURE_PAGE = "https://www.microsoft.com/en-us/download/details.aspx?id=56519"
_AZURE_JSON = re.compile(r"https://download\.microsoft\.com/download/[^\"'\s]+/"
                         r"ServiceTags_Public_\d+\.json")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def cloudflare(texts: list[str]) -> list[str]:
    """Cloudflare's ips-v4 and ips-v6: one CIDR a line."""
    return [line.strip() for text in texts for line in text.splitlines() if line.strip()]


def fastly(texts: list[str]) -> list[str]:
    """Fastly's public-ip-list: {"addresses": [...], "ipv6_addresses": [...]}."""
    data = json.loads(texts[0])
    return [*data["addresses"], *data.get("ipv6_addresses", [])]


def aws(services: Iterable[str]) -> Callable[[list[str]], list[str]]:
    """AWS ip-ranges.json, keeping the prefixes of `services` (e.g. CLOUDFRONT)."""
    wanted = set(services)

    def parse(texts: list[str]) -> list[str]:
        data = json.loads(texts[0])
        return ([p["ip_prefix"] for p in data["prefixes"] if p["service"] in wanted]
                + [p["ipv6_prefix"] for p in data.get("ipv6_prefixes", [])
                   if p["service"] in wanted])
    return parse


def google_cloud(texts: list[str]) -> list[str]:
    """Google Cloud's cloud.json: prefixes with ipv4Prefix or ipv6Prefix."""
    data = json.loads(texts[0])
    return [p.get("ipv4Prefix") or p["ipv6Prefix"] for p in data["prefixes"]]


def azure(tag: str) -> Callable[[list[str]], list[str]]:
    """Azure's ServiceTags_Public JSON, keeping one service tag's prefixes."""
    def parse(texts: list[str]) -> list[str]:
        data = json.loads(texts[0])
        for value in data["values"]:
            if value["name"] == tag:
                return list(value["properties"]["addressPrefixes"])
        raise ValueError(f"service tag {tag} is not in the Azure file")
    return parse


def oracle(texts: list[str]) -> list[str]:
    """Oracle Cloud's public_ip_ranges.json: regions, each with cidrs."""
    data = json.loads(texts[0])
    return [c["cidr"] for region in data["regions"] for c in region["cidrs"]]


def digitalocean(texts: list[str]) -> list[str]:
    """DigitalOcean's geo feed (RFC 8805 CSV): the first column is the prefix."""
    rows = csv.reader(io.StringIO(texts[0]))
    return [row[0].strip() for row in rows if row and row[0].strip()
            and not row[0].startswith("#")]


@dataclass(frozen=True)
class Source:
    """One data file: what it is and where the vendor publishes it."""

    key: str
    product: str
    category: str
    urls: tuple[str, ...]
    parse: Callable[[list[str]], list[str]]
    selection: str = ""


AWS_URL = "https://ip-ranges.amazonaws.com/ip-ranges.json"
AZURE_NOTE = f"{AZURE_PAGE} (the weekly ServiceTags_Public JSON it links)"
SOURCES = (
    Source("cloudflare", "Cloudflare", "cdn",
           ("https://www.cloudflare.com/ips-v4", "https://www.cloudflare.com/ips-v6"),
           cloudflare),
    Source("fastly", "Fastly", "cdn", ("https://api.fastly.com/public-ip-list",), fastly),
    Source("aws_cloudfront", "Amazon CloudFront", "cdn", (AWS_URL,), aws({"CLOUDFRONT"}),
           "service CLOUDFRONT"),
    Source("aws", "Amazon Web Services", "hosting", (AWS_URL,),
           aws({"EC2", "S3", "GLOBALACCELERATOR"}),
           "services EC2, S3 and GLOBALACCELERATOR (CloudFront is its own file)"),
    Source("google_cloud", "Google Cloud", "hosting",
           ("https://www.gstatic.com/ipranges/cloud.json",), google_cloud),
    Source("azure", "Microsoft Azure", "hosting", (AZURE_PAGE,), azure("AzureCloud"),
           "service tag AzureCloud"),
    Source("azure_front_door", "Azure Front Door", "cdn", (AZURE_PAGE,),
           azure("AzureFrontDoor.Frontend"), "service tag AzureFrontDoor.Frontend"),
    Source("oracle_cloud", "Oracle Cloud", "hosting",
           ("https://docs.oracle.com/iaas/tools/public_ip_ranges.json",), oracle),
    Source("digitalocean", "DigitalOcean", "hosting",
           ("https://www.digitalocean.com/geo/google.csv",), digitalocean),
)


def normalise(prefixes: Iterable[str]) -> list[Network]:
    """Distinct networks, IPv4 first, each in address order (host bits must be zero)."""
    networks = {ipaddress.ip_network(p.strip(), strict=False) for p in prefixes}
    return sorted(networks, key=lambda n: (n.version, n.network_address, n.prefixlen))


def render(source: Source, networks: list[Network], read: str) -> str:
    """The data file's text, in the format ilyd.enrich.ip_ranges reads."""
    owner = f"{source.product}'" if source.product.endswith("s") else f"{source.product}'s"
    lines = [f"# {owner} published IP ranges, for ilyd's DNS technographics "
             "(one CIDR a line).",
             f"# product: {source.product}", f"# category: {source.category}",
             *(f"# source: {url}" for url in source.urls)]
    if source.selection:
        lines.append(f"# selection: {source.selection}")
    lines += [f"# read: {read}", "# refresh: scripts/refresh_ip_ranges.py (reads the source "
              f"URL{'s' if len(source.urls) > 1 else ''} above)"]
    lines += [str(n) for n in networks]
    return "\n".join(lines) + "\n"


def _get(url: str) -> str:
    if not url.startswith("https://"):
        raise ValueError(f"refusing a non-https source {url}")
    request = urllib.request.Request(  # noqa: S310 (https only, checked above)
        url, headers={"User-Agent": "ilyd-refresh-ip-ranges"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
        return response.read().decode("utf-8")


def fetch(source: Source, get: Callable[[str], str] = _get) -> list[str]:
    """The vendor's documents for `source` (Azure's JSON is found through its page)."""
    texts = []
    for url in source.urls:
        target = url
        if url == AZURE_PAGE:
            match = _AZURE_JSON.search(get(url))
            if match is None:
                raise RuntimeError(f"no ServiceTags_Public JSON link on {url}")
            target = match.group(0)
        texts.append(get(target))
    return texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("keys", nargs="*", help="files to refresh (default: all): "
                        + ", ".join(s.key for s in SOURCES))
    args = parser.parse_args(argv)
    chosen = [s for s in SOURCES if not args.keys or s.key in args.keys]
    today = dt.datetime.now(dt.UTC).date().isoformat()
    failed = False
    for source in chosen:
        try:
            networks = normalise(source.parse(fetch(source)))
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            print(f"{source.key}: not refreshed: {exc}", file=sys.stderr)
            failed = True
            continue
        if not networks:
            print(f"{source.key}: the vendor listed no ranges; file kept", file=sys.stderr)
            failed = True
            continue
        path = DATA / f"ip_ranges_{source.key}.txt"
        path.write_text(render(source, networks, today), "utf-8")
        print(f"{source.key}: {len(networks)} ranges -> {path.name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
