"""Gather a domain's public DNS records within a time budget (dnspython).

Only the apex's own answers decide the outcome: NXDOMAIN there means the domain does not
exist; a SERVFAIL or timeout there means we know nothing yet (retryable). Failures on
other names (www, a vendor's SPF include, a reverse zone) only leave that evidence out,
since third-party zones are often slow or broken and say nothing about the company.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
import dns.reversename

from ilyd.enrich.dns_spf import SpfChain, expand_spf, spf_record
from ilyd.errors import ProviderError

# Reverse lookups cost a query each and vendors' PTR names are only a hint: a couple will do.
_MAX_PTR_ADDRESSES = 2


class DomainMissingError(Exception):
    """The apex answered NXDOMAIN: the domain does not exist."""


@dataclass(frozen=True)
class Resolution:
    """Where one web name (the apex or www) resolves: its CNAME chain and addresses."""

    name: str
    cnames: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class DomainRecords:
    """The records of one domain that technographics read."""

    domain: str
    mx: tuple[str, ...] = ()
    txt: tuple[str, ...] = ()
    spf: SpfChain | None = None
    ns: tuple[str, ...] = ()
    cnames: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    ptr: tuple[str, ...] = ()
    resolutions: tuple[Resolution, ...] = ()


def _host(name: object) -> str:
    return str(name).lower().rstrip(".")


class RecordCollector:
    """Queries one domain's records through a shared dnspython resolver."""

    def __init__(self, resolver: dns.resolver.Resolver, query_timeout: float,
                 budget: float) -> None:
        self._resolver = resolver
        self._query_timeout = query_timeout
        self._budget = budget

    def collect(self, domain: str) -> DomainRecords:
        """All evidence for `domain`; DomainMissingError or ProviderError on failure."""
        deadline = time.monotonic() + self._budget
        query = _Query(self._resolver, domain, self._query_timeout, deadline)
        mx = query.apex("MX")
        txt = query.apex("TXT")
        ns = query.apex("NS")
        apex_a = query.apex("A")
        apex_aaaa = query.apex("AAAA")
        www_a = query.other(f"www.{domain}", "A")
        mx_hosts = tuple(_host(r.exchange) for r in mx.rrset or () if _host(r.exchange))
        txt_strings = tuple(b"".join(r.strings).decode("utf-8", "replace")
                            for r in txt.rrset or ())
        cnames = tuple(dict.fromkeys(_chain(apex_a) + _chain(www_a)))
        addresses = tuple(dict.fromkeys(
            r.address for answer in (apex_a, apex_aaaa, www_a) for r in answer.rrset or ()
        ))
        resolutions = tuple(
            Resolution(name, tuple(_chain(a) + _chain(aaaa)),
                       tuple(r.address for answer in (a, aaaa) for r in answer.rrset or ()))
            for name, a, aaaa in ((domain, apex_a, apex_aaaa), (f"www.{domain}", www_a, _EMPTY))
            if a.rrset is not None or aaaa.rrset is not None
        )
        record = spf_record(txt_strings)
        spf = None
        if record is not None:
            def fetch(name: str) -> list[str]:
                answer = query.other(name, "TXT")
                return [b"".join(r.strings).decode("utf-8", "replace")
                        for r in answer.rrset or ()]
            spf = expand_spf(domain, record, fetch)
        ptr = tuple(
            _host(r.target)
            for address in addresses[:_MAX_PTR_ADDRESSES]
            for r in query.other(dns.reversename.from_address(address), "PTR").rrset or ()
        )
        return DomainRecords(
            domain=domain, mx=mx_hosts, txt=txt_strings, spf=spf,
            ns=tuple(_host(r.target) for r in ns.rrset or ()),
            cnames=cnames, addresses=addresses, ptr=ptr, resolutions=resolutions,
        )


def _chain(answer: dns.resolver.Answer | _Empty) -> list[str]:
    """Every name a CNAME chain passes through, ending with the canonical name."""
    response = getattr(answer, "response", None)
    if response is None:
        return []
    return [_host(rr[0].target) for rr in response.answer if rr.rdtype == dns.rdatatype.CNAME]


class _Empty:
    """Stands in for an answer with no records (NODATA, or evidence we had to leave out)."""

    rrset = None
    response = None


_EMPTY = _Empty()


class _Query:
    """One domain's queries, sharing its deadline."""

    def __init__(self, resolver: dns.resolver.Resolver, domain: str, query_timeout: float,
                 deadline: float) -> None:
        self._resolver = resolver
        self._domain = domain
        self._query_timeout = query_timeout
        self._deadline = deadline

    def _lifetime(self) -> float:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise ProviderError(
                f"DNS lookups for {self._domain} ran out of their time budget; the record "
                "waits and is tried again later", retryable=True, reason="timeout",
            )
        return min(self._query_timeout, remaining)

    def apex(self, rdtype: str) -> dns.resolver.Answer | _Empty:
        """Query the domain itself: its failures decide the lookup's outcome."""
        try:
            return self._resolver.resolve(self._domain, rdtype, lifetime=self._lifetime(),
                                          search=False)
        except dns.resolver.NXDOMAIN as exc:
            raise DomainMissingError(self._domain) from exc
        except dns.resolver.NoAnswer:
            return _EMPTY
        except dns.resolver.NoNameservers as exc:
            # dnspython raises this for an rcode (SERVFAIL, REFUSED…) and for an answer
            # it could not use (a CNAME loop, a truncated answer without a TCP retry):
            # only the former is the servers failing.
            answers = [error for *_, error, _msg in exc.kwargs.get("errors", ())]
            if all(isinstance(error, str) for error in answers):
                raise ProviderError(
                    f"DNS servers failed ({', '.join(dict.fromkeys(answers)) or 'SERVFAIL'}) "
                    f"for {rdtype} {self._domain}; the record waits and is tried again later",
                    retryable=True, reason="servfail",
                ) from exc
            detail = "; ".join(dict.fromkeys(str(e) or type(e).__name__ for e in answers))
            raise ProviderError(
                f"DNS query {rdtype} {self._domain} got no usable answer ({detail}); the "
                "record waits and is tried again later", retryable=True, reason="dns_error",
            ) from exc
        except dns.exception.Timeout as exc:
            raise ProviderError(
                f"no DNS answer for {rdtype} {self._domain} in time; the record waits and is "
                "tried again later", retryable=True, reason="timeout",
            ) from exc
        except dns.exception.DNSException as exc:
            raise ProviderError(
                f"DNS query {rdtype} {self._domain} failed: {exc}", retryable=True,
                reason="dns_error",
            ) from exc

    def other(self, name: str | dns.name.Name, rdtype: str) -> dns.resolver.Answer | _Empty:
        """Query a related name; any failure just leaves its evidence out."""
        try:
            return self._resolver.resolve(name, rdtype, lifetime=self._lifetime(), search=False)
        except dns.exception.DNSException:
            return _EMPTY
