"""Live DNS technographics: which email, DNS, CDN, cloud and SaaS products a company runs.

For a domain we read MX, TXT (SPF include chain and verification tokens), NS, the CNAME
chains of the apex and www, A/AAAA and their PTR names (dns_records.py), then match them
against our signature table (signatures.py) and the CDNs' and clouds' published IP ranges
(ip_ranges.py). Where a company's web properties are hosted is read only from where they
resolve (CNAME targets, addresses, reverse names), never from who hosts its DNS: a zone
on Route 53 says nothing about where the website runs. NXDOMAIN gives an invalid-domain lookup;
SERVFAIL and timeouts on the apex are retryable ProviderErrors.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import dns.resolver
import structlog

from ilyd.enrich.dns_records import DomainMissingError, DomainRecords, RecordCollector
from ilyd.enrich.ip_ranges import IpRanges, RangeMatch, load_ip_ranges
from ilyd.enrich.provider import Lookup, lookup_each
from ilyd.enrich.provider_health import HEALTHY, ProviderHealth
from ilyd.enrich.signatures import (
    CATEGORY_FIELDS,
    Category,
    Match,
    RecordKind,
    SignatureTable,
    load_signatures,
)
from ilyd.errors import ConfigError, ProviderError
from ilyd.metrics import (
    PROVIDER_FAILURES,
    PROVIDER_REQUEST_DURATION,
    PROVIDER_REQUESTS,
    prepare_provider,
)

log = structlog.get_logger(__name__)

TECHNOLOGIES_FIELD = "Ily_Technologies__c"
EVIDENCE_FIELD = "Ily_Technology_Evidence__c"
# Multi-value text fields are "; "-separated, like Salesforce multi-select picklists.
SEPARATOR = "; "
# Every reason a lookup can fail with (ilyd_provider_failures_total): the reasons of
# ilyd.enrich.dns_records' ProviderErrors (a test keeps them equal).
FAILURE_REASONS = ("timeout", "servfail", "dns_error")
# Shared answers (vendors' SPF records, CDN names) repeat across companies.
_RESOLVER_CACHE_ENTRIES = 10_000


@dataclass(frozen=True)
class DnsSettings:
    """How to reach DNS: `nameservers` empty means the system's resolver configuration."""

    name: str = "dns"
    nameservers: tuple[str, ...] = ()
    port: int = 53
    query_timeout_seconds: float = 2.0
    budget_seconds: float = 10.0
    max_concurrency: int = 16
    signatures_path: Path | None = None
    ip_ranges_path: Path | None = None


def build_resolver(settings: DnsSettings) -> dns.resolver.Resolver:
    """A dnspython resolver for the settings (never reading resolv.conf when servers are set)."""
    if settings.nameservers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = list(settings.nameservers)
        resolver.port = settings.port
    else:
        try:
            resolver = dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration as exc:
            raise ConfigError(
                f"provider {settings.name!r}: no system DNS resolver is configured "
                "(/etc/resolv.conf); set nameservers explicitly"
            ) from exc
    resolver.timeout = settings.query_timeout_seconds
    resolver.lifetime = settings.budget_seconds
    resolver.cache = dns.resolver.LRUCache(_RESOLVER_CACHE_ENTRIES)
    return resolver


class DnsProvider:
    """Technographics from public DNS. Safe to call from many threads."""

    def __init__(self, settings: DnsSettings | None = None,
                 signatures: SignatureTable | None = None) -> None:
        self.settings = settings or DnsSettings()
        self.name = self.settings.name
        self.signatures = signatures or load_signatures(self.settings.signatures_path)
        self.ip_ranges: IpRanges = load_ip_ranges(self.settings.ip_ranges_path)
        self._collector = RecordCollector(
            build_resolver(self.settings), self.settings.query_timeout_seconds,
            self.settings.budget_seconds,
        )
        self._slots = threading.BoundedSemaphore(self.settings.max_concurrency)
        prepare_provider(self.name, FAILURE_REASONS)

    @property
    def health(self) -> ProviderHealth:
        """Always OK: DNS has no credentials to be refused."""
        return HEALTHY

    def lookup(self, domain: str) -> Lookup:
        """Read the domain's DNS and map it to Ily fields."""
        with self._slots:
            PROVIDER_REQUESTS.labels(self.name).inc()
            started = time.monotonic()
            try:
                records = self._collector.collect(domain)
            except DomainMissingError:
                return Lookup(provider=self.name, domain=domain, found=False, invalid=True,
                              evidence=f"NXDOMAIN {domain}")
            except ProviderError as exc:
                PROVIDER_FAILURES.labels(self.name, exc.reason).inc()
                log.info("dns_lookup_failed", domain=domain, reason=exc.reason)
                raise
            finally:
                PROVIDER_REQUEST_DURATION.labels(self.name).observe(time.monotonic() - started)
        return self.interpret(records)

    def lookup_many(self, domains: Iterable[str]) -> Mapping[str, Lookup | ProviderError]:
        """Look each domain up (DNS has no batch form)."""
        return lookup_each(self.lookup, domains)

    def close(self) -> None:
        """Nothing to release: dnspython opens a socket per query."""

    def interpret(self, records: DomainRecords) -> Lookup:
        """Match the records against the signature table and build the Ily values."""
        matches = self._matches(records)
        by_category: dict[Category, list[str]] = {}
        for match in matches:
            products = by_category.setdefault(match.category, [])
            if match.product not in products:
                products.append(match.product)
        values: dict[str, object] = {
            CATEGORY_FIELDS[category]: SEPARATOR.join(products)
            for category, products in by_category.items()
        }
        technologies = list(dict.fromkeys(m.product for m in matches))
        evidence = "\n".join(dict.fromkeys(m.describe() for m in matches))
        if technologies:
            values[TECHNOLOGIES_FIELD] = SEPARATOR.join(technologies)
            values[EVIDENCE_FIELD] = evidence
        return Lookup(provider=self.name, domain=records.domain, found=bool(technologies),
                      values=values, evidence=evidence or None)

    def _matches(self, records: DomainRecords) -> list[Match | RangeMatch]:
        table = self.signatures
        mx = [m for host in records.mx for m in table.match(RecordKind.MX, host)]
        spf_domains = records.spf.domains if records.spf else ()
        spf = [m for name in spf_domains for m in table.match(RecordKind.SPF, name)]
        # The mailbox provider is read from MX; SPF only names it when MX points at a
        # gateway (Proofpoint, Mimecast…) or at a server we do not know.
        if any(m.signature.category is Category.EMAIL_PROVIDER for m in mx):
            spf = [m for m in spf if m.signature.category is not Category.EMAIL_PROVIDER]
        return [
            *mx,
            *spf,
            *(m for host in records.ns for m in table.match(RecordKind.NS, host)),
            *(m for host in records.cnames for m in table.match(RecordKind.CNAME, host)),
            *(m for host in records.ptr for m in table.match(RecordKind.PTR, host)),
            *self._address_matches(records),
            *(m for txt in records.txt for m in table.match(RecordKind.TXT, txt)),
        ]

    def _address_matches(self, records: DomainRecords) -> list[Match | RangeMatch]:
        """A platform's documented addresses; else the CDN or cloud whose ranges hold them.

        Ranges only fill in what a name's CNAME chain and addresses did not already say:
        a site on Netlify or Webflow resolves into AWS's ranges, yet its admin would say
        it is hosted by Netlify or Webflow; a site on Cloudflare Pages is still behind
        Cloudflare's CDN, which only the ranges show.
        """
        table = self.signatures
        found: list[Match | RangeMatch] = []
        for resolution in records.resolutions:
            known = [m for address in resolution.addresses
                     for m in table.match(RecordKind.ADDRESS, address)]
            found.extend(known)
            if known:
                continue
            named = {m.category for host in resolution.cnames
                     for m in table.match(RecordKind.CNAME, host)}
            if Category.CDN in named:
                continue
            for address in resolution.addresses:
                match = self.ip_ranges.lookup(address)
                if match is not None and (Category.HOSTING not in named
                                          or match.category is Category.CDN):
                    found.append(match)
        return found
