"""A record's company domain: from Website (or a Lead's Email) to a registrable domain.

`extract_domain` turns whatever an admin or a web form typed into a Website or Email
field into the registrable domain a provider is asked about (`https://WWW.Acme.co.uk:8443/x`
→ `acme.co.uk`), or says why there is none. `record_domain` picks the field per object:
Account → Website; Lead → Website, else the Email's domain.

Normalisation: strip scheme, credentials, port, path, query, fragment and trailing dot;
lower-case; IDNA 2008 with UTS 46 mapping to punycode (A-labels); reduce to the
registrable domain with the Public Suffix List snapshot bundled in tldextract (never
fetched: a daemon must not depend on reaching publicsuffix.org). Dropping `www.` falls
out of that reduction. Private PSL suffixes count (`acme.github.io` is its own company,
not GitHub). The reserved `.example` and `.test` TLDs (RFC 2606/6761) count as public
suffixes so the bundled sample dataset and devorg work; they never occur in real data.

Nothing here raises on a `str`: bad input is a result with a reason.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

import idna
import tldextract

from ilyd.enrich.freemail import MailDomainKind, classify_mail_domain
from ilyd.enrich.provider import MatchStatus

__all__ = [
    "DomainReason",
    "DomainResult",
    "extract_domain",
    "record_domain",
    "source_fields",
]

# A Salesforce Url field holds 255 characters; anything much longer is pasted junk.
MAX_INPUT_CHARS = 300
# RFC 1035: 253 characters for a host name in text form (without the trailing dot).
MAX_HOST_CHARS = 253
RESERVED_TEST_SUFFIXES = ("example", "test")
# What people type when a form insists on a website they do not have.
_PLACEHOLDERS = frozenset(
    {"n/a", "na", "n.a.", "none", "null", "nil", "unknown", "-", "--", ".", "tbd", "x",
     "no", "nope", "not applicable", "[[unknown]]", "http://", "https://", "www", "www."}
)
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_LDH_HOST = re.compile(rf"(?:{_LDH_LABEL.pattern}\.)*{_LDH_LABEL.pattern}")
# Unicode category Cc is exactly C0, DEL and C1.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


class DomainReason(StrEnum):
    """Why a value yields no domain to enrich."""

    BLANK = "blank"
    PLACEHOLDER = "placeholder"
    TOO_LONG = "too_long"
    CONTROL_CHARACTERS = "control_characters"
    MALFORMED = "malformed"
    IP_ADDRESS = "ip_address"
    NO_PUBLIC_SUFFIX = "no_public_suffix"
    FREE_EMAIL = "free_email"
    DISPOSABLE_EMAIL = "disposable_email"

    @property
    def match_status(self) -> MatchStatus:
        """The Match Status a record with only this reason gets."""
        if self in (DomainReason.FREE_EMAIL, DomainReason.DISPOSABLE_EMAIL):
            return MatchStatus.FREE_EMAIL
        return MatchStatus.INVALID_DOMAIN


@dataclass(frozen=True)
class DomainResult:
    """The outcome of reading a domain out of one value (or one record).

    `domain` is the registrable domain (lower-case, punycode) when `reason` is None. For
    free and disposable mail it is the listed mail domain (e.g. `gmail.com`), still
    worth writing to Ily Domain; for every other reason it is None. `source` names the
    Salesforce field the value came from, `detail` explains a reason to a human.
    """

    domain: str | None
    reason: DomainReason | None = None
    source: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        """True when there is a company domain to look up."""
        return self.reason is None

    @property
    def match_status(self) -> MatchStatus | None:
        """The Match Status this result decides on its own (None: ask a provider)."""
        return None if self.reason is None else self.reason.match_status


_extractor_lock = threading.Lock()
_extractor: tldextract.TLDExtract | None = None


def _psl() -> tldextract.TLDExtract:
    """The offline extractor, built once (loading the PSL snapshot is slow)."""
    global _extractor
    with _extractor_lock:
        if _extractor is None:
            # suffix_list_urls=() and cache_dir=None: use the snapshot inside the wheel,
            # never the network, never a cache file (the default extractor fetches the
            # list: https://github.com/john-kurkowski/tldextract/issues/332).
            extractor = tldextract.TLDExtract(
                suffix_list_urls=(),
                cache_dir=None,
                include_psl_private_domains=True,
                extra_suffixes=RESERVED_TEST_SUFFIXES,
            )
            extractor("warm.up")  # loads the list now, under the lock, not in a worker later
            _extractor = extractor
        return _extractor


def _fail(reason: DomainReason, detail: str, source: str | None) -> DomainResult:
    return DomainResult(domain=None, reason=reason, source=source, detail=detail)


# Characters that make urlsplit's host parsing do more than cut and lower-case.
_NETLOC_SPECIAL = frozenset("@:[]%")


def _plain_host(text: str) -> str | bool | None:
    """urlsplit's host of the common shapes (`https://www.acme.com/x`, `acme.com`) without
    urlsplit; False when the text needs the full parse."""
    head = text[:8].lower()
    if head.startswith("https://"):
        rest = text[8:]
    elif head.startswith("http://"):
        rest = text[7:]
    elif "://" not in text and not text.startswith("//"):
        rest = text
    else:
        return False
    end = len(rest)
    for stop in "/?#":
        at = rest.find(stop, 0, end)
        if at >= 0:
            end = at
    netloc = rest[:end]
    if not netloc.isascii() or not _NETLOC_SPECIAL.isdisjoint(netloc):
        return False
    return netloc.lower() or None


def _host_of(text: str) -> str | None:
    """The host part of a URL-ish string, or None when it has none."""
    plain = _plain_host(text)
    if plain is not False:
        return plain  # type: ignore[return-value]
    if "://" not in text:
        text = "http:" + text if text.startswith("//") else "http://" + text
    try:
        host = urlsplit(text).hostname
    except ValueError:  # bad IPv6 brackets, NFKC tricks in the netloc
        return None
    return host or None


def _to_alabels(host: str) -> str | None:
    """Lower-case A-label form of `host`, or None when it is no valid IDNA host name."""
    if host.isascii() and "--" not in host and _LDH_HOST.fullmatch(host):
        return host  # the check below in one regex: no label can have "--" at [2:4]
    labels = host.split(".")
    if host.isascii() and all(
        _LDH_LABEL.fullmatch(label) and label[2:4] != "--" for label in labels
    ):
        return host  # plain LDH labels: nothing for IDNA to map or check
    try:
        return idna.encode(host, uts46=True, std3_rules=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return None


def _is_ip(host: str) -> bool:
    if ":" not in host and not host.replace(".", "").isdigit():
        return False  # cheap pre-check: this runs for every record
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def extract_domain(value: str, *, email: bool = False, source: str | None = None) -> DomainResult:
    """Read the registrable domain out of a Website value (or, with `email`, an address).

    Never raises for a `str`; everything that is not a usable public domain comes back
    as a result with a `reason`. `source` is copied into the result.
    """
    return _extract(value, email, source)


# A pure function of its arguments returning a frozen result: cached, because a resync
# meets the same Website and Email values (and an inbox the same record) again and again.
@functools.lru_cache(maxsize=65_536)
def _extract(value: str, email: bool, source: str | None) -> DomainResult:
    text = value.strip()
    if not text:
        return _fail(DomainReason.BLANK, "empty", source)
    if text.lower() in _PLACEHOLDERS:
        return _fail(DomainReason.PLACEHOLDER, f"{text!r} is a placeholder, not a domain", source)
    if len(text) > MAX_INPUT_CHARS:
        return _fail(DomainReason.TOO_LONG, f"{len(text)} characters", source)
    if _CONTROL.search(text):
        return _fail(DomainReason.CONTROL_CHARACTERS, "contains control characters", source)

    if email:
        if "@" not in text:
            return _fail(DomainReason.MALFORMED, "an email address needs an @", source)
        raw_host: str | None = text.rsplit("@", 1)[1].strip("[]")
    else:
        raw_host = _host_of(text)
    if not raw_host:
        return _fail(DomainReason.MALFORMED, "no host name in it", source)
    return _from_host(raw_host.rstrip(".").lower(), source)


# The rest depends only on the host: cached apart, because every person of a company
# has an address of their own (and a Website many spellings) on one host. A result is
# shared with `_extract`'s entry, so an entry here costs its key (~200 bytes): 16,384
# hosts (~3 MiB at most) hold every company a daemon's real-time stream meets for hours;
# a resync of more distinct hosts than that pays the full work on its misses, as before.
@functools.lru_cache(maxsize=16_384)
def _from_host(raw_host: str, source: str | None) -> DomainResult:
    if _is_ip(raw_host):
        return _fail(DomainReason.IP_ADDRESS, "an IP address names no company", source)
    host = _to_alabels(raw_host) if raw_host else None
    if not host:
        return _fail(DomainReason.MALFORMED, "not a valid host name", source)
    if len(host) > MAX_HOST_CHARS:
        return _fail(DomainReason.TOO_LONG, f"host name of {len(host)} characters", source)

    parts = _psl()(host)
    if not parts.domain or not parts.suffix:
        return _fail(DomainReason.NO_PUBLIC_SUFFIX, f"{host!r} is under no public suffix", source)
    registrable = f"{parts.domain}.{parts.suffix}"

    listed = classify_mail_domain(host, registrable)
    if listed is not None:
        kind, entry = listed
        reason = (
            DomainReason.FREE_EMAIL if kind is MailDomainKind.FREE
            else DomainReason.DISPOSABLE_EMAIL
        )
        return DomainResult(
            domain=entry, reason=reason, source=source, detail=f"{entry} is a {kind} mail domain"
        )
    return DomainResult(domain=registrable, source=source)


# Which fields carry the company's domain, in order of trust. A Lead's Website is the
# company's own statement; its Email may be a personal address.
_SOURCE_FIELDS: Mapping[str, tuple[str, ...]] = {
    "Account": ("Website",),
    "Lead": ("Website", "Email"),
}
_WEBSITE_ONLY = ("Website",)
# When no field gives a domain, report the most telling reason: a free-mail address says
# more than "n/a" in Website, which says more than an empty field.
_REASON_RANK = {
    DomainReason.FREE_EMAIL: 0,
    DomainReason.DISPOSABLE_EMAIL: 0,
    DomainReason.BLANK: 2,
}


def source_fields(sobject: str) -> tuple[str, ...]:
    """The input fields whose change can change `sobject`'s domain (for PushTopics, SOQL)."""
    return _SOURCE_FIELDS.get(sobject, _WEBSITE_ONLY)


def record_domain(sobject: str, fields: Mapping[str, object]) -> DomainResult:
    """The domain of one record: Account → Website; Lead → Website, else Email's domain.

    A later field is only used when the earlier ones give no company domain, and the
    result names the field it came from. Non-string field values count as blank.
    """
    # The first failure of the lowest rank (what min() over the failures would pick),
    # kept as we go: this runs for every record.
    best: DomainResult | None = None
    best_rank = 0
    for name in _SOURCE_FIELDS.get(sobject, _WEBSITE_ONLY):
        value = fields.get(name)
        result = _extract(value if isinstance(value, str) else "", name == "Email", name)
        if result.reason is None:
            return result
        rank = _REASON_RANK.get(result.reason, 1)
        if best is None or rank < best_rank:
            best, best_rank = result, rank
    assert best is not None  # every object has at least one source field
    return best
