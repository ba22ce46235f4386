"""Domain extraction: table-driven cases and hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ilyd.enrich.domain import (
    DomainReason,
    DomainResult,
    extract_domain,
    record_domain,
    source_fields,
)
from ilyd.enrich.provider import MatchStatus

R = DomainReason

WEBSITE_CASES = [
    # (input, domain, reason)
    ("acme.com", "acme.com", None),
    ("https://www.acme.com", "acme.com", None),
    ("HTTPS://WWW.ACME.COM/", "acme.com", None),
    ("http://Acme.Com:8080/path?q=1#frag", "acme.com", None),
    ("https://user:secret@shop.acme.com:443/cart", "acme.com", None),
    ("acme.com:8443", "acme.com", None),
    ("//acme.com/about", "acme.com", None),
    ("  www.acme.com  ", "acme.com", None),
    ("acme.com.", "acme.com", None),
    ("ftp://files.acme.com", "acme.com", None),
    ("www.acme.co.uk", "acme.co.uk", None),
    ("https://shop.example.com.au/x", "example.com.au", None),
    ("a.b.c.acme.co.jp", "acme.co.jp", None),
    ("bücher.de", "xn--bcher-kva.de", None),
    ("https://www.Bücher.DE/path", "xn--bcher-kva.de", None),
    ("xn--bcher-kva.de", "xn--bcher-kva.de", None),
    ("пример.рф", "xn--e1afmkfd.xn--p1ai", None),
    ("ｗｗｗ．ａｃｍｅ．ｃｏｍ", "acme.com", None),
    ("acme.github.io", "acme.github.io", None),
    ("docs.acme.github.io", "acme.github.io", None),
    ("acme.example", "acme.example", None),
    ("www.globex.test", "globex.test", None),
    ("mailto:sales@acme.com", "acme.com", None),
    ("", None, R.BLANK),
    ("   ", None, R.BLANK),
    ("n/a", None, R.PLACEHOLDER),
    ("N/A", None, R.PLACEHOLDER),
    ("none", None, R.PLACEHOLDER),
    ("http://", None, R.PLACEHOLDER),
    ("https://", None, R.PLACEHOLDER),
    ("[[unknown]]", None, R.PLACEHOLDER),
    ("http:///path", None, R.MALFORMED),
    ("http://[::1", None, R.MALFORMED),
    ("acme..com", None, R.MALFORMED),
    ("acme com", None, R.MALFORMED),
    ("under_score.com", None, R.MALFORMED),
    ("-acme.com", None, R.MALFORMED),
    ("127.0.0.1", None, R.IP_ADDRESS),
    ("http://10.1.2.3:8080/admin", None, R.IP_ADDRESS),
    ("[2001:db8::1]", None, R.IP_ADDRESS),
    ("http://[2001:db8::1]:443/", None, R.IP_ADDRESS),
    ("localhost", None, R.NO_PUBLIC_SUFFIX),
    ("http://localhost:3000", None, R.NO_PUBLIC_SUFFIX),
    ("intranet", None, R.NO_PUBLIC_SUFFIX),
    ("co.uk", None, R.NO_PUBLIC_SUFFIX),
    ("github.io", None, R.NO_PUBLIC_SUFFIX),
    ("acme.invalidtld", None, R.NO_PUBLIC_SUFFIX),
    ("a" * 301, None, R.TOO_LONG),
    ("x" * 40 + "." + ".".join(["a" * 60] * 4) + ".com", None, R.TOO_LONG),
    ("x" * 64 + ".com", None, R.MALFORMED),
    ("acme.com\x00", None, R.CONTROL_CHARACTERS),
    ("acme\x07.com", None, R.CONTROL_CHARACTERS),
    ("www.acme.com\x1b[31m", None, R.CONTROL_CHARACTERS),
    ("gmail.com", "gmail.com", R.FREE_EMAIL),
    ("https://mail.google.com", "google.com", None),
    ("mail.yahoo.co.uk", "yahoo.co.uk", R.FREE_EMAIL),
    ("mailinator.com", "mailinator.com", R.FREE_EMAIL),
    # public suffixes listed as free mail must not swallow the companies under them
    ("acme.net.ua", "acme.net.ua", None),
    ("acme.za.com", "acme.za.com", None),
]


@pytest.mark.parametrize(("value", "domain", "reason"), WEBSITE_CASES)
def test_website_values_give_the_registrable_domain_or_a_reason(
    value: str, domain: str | None, reason: DomainReason | None
) -> None:
    result = extract_domain(value)
    assert (result.domain, result.reason) == (domain, reason), result.detail


EMAIL_CASES = [
    ("bob@acme.com", "acme.com", None),
    ("Bob.Smith@Sales.ACME.co.uk", "acme.co.uk", None),
    ('"odd@name"@acme.example', "acme.example", None),
    ("bob@bücher.de", "xn--bcher-kva.de", None),
    ("bob@gmail.com", "gmail.com", R.FREE_EMAIL),
    ("bob@GoogleMail.com", "googlemail.com", R.FREE_EMAIL),
    ("x@0-mail.com", "0-mail.com", R.FREE_EMAIL),
    ("bob@[192.0.2.1]", None, R.IP_ADDRESS),
    ("bob@localhost", None, R.NO_PUBLIC_SUFFIX),
    ("acme.com", None, R.MALFORMED),
    ("bob@", None, R.MALFORMED),
    ("", None, R.BLANK),
]


@pytest.mark.parametrize(("value", "domain", "reason"), EMAIL_CASES)
def test_email_values_give_the_domain_after_the_last_at(
    value: str, domain: str | None, reason: DomainReason | None
) -> None:
    result = extract_domain(value, email=True)
    assert (result.domain, result.reason) == (domain, reason), result.detail


def test_disposable_domains_are_told_apart_from_free_ones() -> None:
    result = extract_domain("someone@0815.ru", email=True)
    # 0815.ru is on both lists; free wins, and both give the same Match Status.
    assert result.match_status is MatchStatus.FREE_EMAIL
    only_disposable = extract_domain("x@01022.hk", email=True)
    assert only_disposable.reason in (R.DISPOSABLE_EMAIL, R.FREE_EMAIL)
    assert only_disposable.match_status is MatchStatus.FREE_EMAIL


def test_reasons_map_to_match_statuses() -> None:
    assert extract_domain("acme.com").match_status is None
    assert extract_domain("n/a").match_status is MatchStatus.INVALID_DOMAIN
    assert extract_domain("127.0.0.1").match_status is MatchStatus.INVALID_DOMAIN
    assert extract_domain("gmail.com").match_status is MatchStatus.FREE_EMAIL


def test_an_account_uses_its_website_only() -> None:
    result = record_domain("Account", {"Website": "https://acme.com", "Email": "x@globex.test"})
    assert (result.domain, result.source) == ("acme.com", "Website")
    no_site = record_domain("Account", {"Website": None, "Email": "x@globex.test"})
    assert (no_site.reason, no_site.source) == (R.BLANK, "Website")


def test_a_lead_falls_back_to_its_email_when_the_website_gives_no_domain() -> None:
    assert record_domain("Lead", {"Website": "acme.com", "Email": "x@globex.test"}) == (
        DomainResult(domain="acme.com", source="Website")
    )
    assert record_domain("Lead", {"Website": "", "Email": "x@globex.test"}).domain == "globex.test"
    fallback = record_domain("Lead", {"Website": "n/a", "Email": "x@globex.test"})
    assert (fallback.domain, fallback.source) == ("globex.test", "Email")


def test_a_lead_without_any_domain_reports_the_most_telling_reason() -> None:
    free = record_domain("Lead", {"Website": "n/a", "Email": "bob@gmail.com"})
    assert (free.reason, free.source, free.domain) == (R.FREE_EMAIL, "Email", "gmail.com")
    junk = record_domain("Lead", {"Website": "localhost", "Email": None})
    assert (junk.reason, junk.source) == (R.NO_PUBLIC_SUFFIX, "Website")
    nothing = record_domain("Lead", {})
    assert nothing.reason is R.BLANK


def test_non_string_field_values_count_as_blank() -> None:
    assert record_domain("Account", {"Website": 42}).reason is R.BLANK


def test_source_fields_name_the_inputs_per_object() -> None:
    assert source_fields("Account") == ("Website",)
    assert source_fields("Lead") == ("Website", "Email")


# -- properties -----------------------------------------------------------------------

_label = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
_hostish = st.lists(
    st.one_of(_label, st.text(min_size=1, max_size=8)), min_size=1, max_size=5
).map(".".join)
_urlish = st.builds(
    lambda scheme, creds, host, port, path: f"{scheme}{creds}{host}{port}{path}",
    st.sampled_from(["", "http://", "https://", "HTTP://", "//", "ftp://"]),
    st.sampled_from(["", "user@", "u:p@"]),
    _hostish,
    st.sampled_from(["", ":80", ":8443", ":x"]),
    st.sampled_from(["", "/", "/a?b=c#d", "?q", "#f"]),
)
_anything = st.one_of(st.text(max_size=400), _urlish, st.emails().map(str))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=_anything, email=st.booleans())
@example(value="http://[", email=False)
@example(value="\udcff.com", email=False)
@example(value="a@b@c.com", email=True)
def test_extraction_never_raises_and_is_idempotent(value: str, email: bool) -> None:
    result = extract_domain(value, email=email)
    assert isinstance(result, DomainResult)
    keeps_domain = result.reason in (None, R.FREE_EMAIL, R.DISPOSABLE_EMAIL)
    assert (result.domain is not None) == keeps_domain
    if result.domain is not None:
        assert result.domain.isascii()
        assert result.domain == result.domain.lower()
        assert len(result.domain) <= 253
        again = extract_domain(result.domain)
        assert (again.domain, again.reason) == (result.domain, result.reason)


@settings(max_examples=200, deadline=None)
@given(
    sobject=st.sampled_from(["Account", "Lead", "Contact"]),
    website=st.one_of(st.none(), st.integers(), _anything),
    email=st.one_of(st.none(), _anything),
)
def test_record_domain_never_raises(sobject: str, website: object, email: object) -> None:
    result = record_domain(sobject, {"Website": website, "Email": email})
    assert result.source in source_fields(sobject)
