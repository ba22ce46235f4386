"""The bundled free-mail and disposable-mail lists."""

from __future__ import annotations

from ilyd.enrich.freemail import (
    MailDomainKind,
    classify_mail_domain,
    disposable_domains,
    free_domains,
)


def test_the_lists_are_loaded_with_the_well_known_domains() -> None:
    free = free_domains()
    assert len(free) > 4000
    assert {"gmail.com", "outlook.com", "hotmail.com", "yahoo.com", "icloud.com", "gmx.de",
            "qq.com", "proton.me"} <= free
    assert len(disposable_domains()) > 5000
    assert "mailinator.com" in disposable_domains()
    assert not any(d.startswith("#") or d != d.strip().lower() for d in free)


def test_a_host_matches_itself_or_a_parent_down_to_the_registrable_domain() -> None:
    assert classify_mail_domain("gmail.com", "gmail.com") == (MailDomainKind.FREE, "gmail.com")
    assert classify_mail_domain("eu.gmail.com", "gmail.com") == (MailDomainKind.FREE, "gmail.com")
    assert classify_mail_domain("acme.com", "acme.com") is None


def test_listed_public_suffixes_do_not_swallow_companies_under_them() -> None:
    assert "net.ua" in free_domains()
    assert classify_mail_domain("acme.net.ua", "acme.net.ua") is None
    assert classify_mail_domain("net.ua", "net.ua") == (MailDomainKind.FREE, "net.ua")


def test_disposable_only_domains_are_classified_disposable() -> None:
    only = sorted(disposable_domains() - free_domains())
    assert only, "some disposable domains are not on the free list"
    host = only[0]
    registrable = ".".join(host.split(".")[-2:])
    kind, entry = classify_mail_domain(host, registrable) or (None, None)
    assert kind is MailDomainKind.DISPOSABLE
    assert entry is not None
    assert host.endswith(entry)
