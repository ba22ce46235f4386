"""Salesforce record values through the pipeline's pure logic (domain, values, work):
any Unicode, 255+ characters, IDN and punycode websites. Each gives a domain or a reason,
a junk website never yields a domain that is not a valid host name, and every value ilyd
would write fits its field."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import idna
from hypothesis import example, given
from hypothesis import strategies as st

from ilyd.enrich import fields as catalogue
from ilyd.enrich.domain import DomainReason, extract_domain, record_domain
from ilyd.enrich.provider import Lookup, MatchStatus
from ilyd.enrich.values import enrich_record, enrich_records
from ilyd.errors import ProviderError
from ilyd.pipeline.work import inputs_hash
from tests.fuzz.fits import assert_fits
from tests.fuzz.settings import PURE

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

# Every code point, lone surrogates included (JSON from Salesforce can carry "\ud800").
any_text = st.one_of(
    st.text(max_size=400),
    st.builds(lambda a, b: f"{a}\ud800{b}", st.text(max_size=20), st.text(max_size=20)),
    st.text(st.characters(min_codepoint=0x10000), max_size=300),  # two UTF-16 units each
)
label_chars = st.sampled_from([*"abcxyz0129-_.", "é", "ü", "ß", "中", "ı", "İ", "ﬀ", "\u200d",
                               "\u0301", "Ａ", "ς", "𝒜"])
labels = st.one_of(
    st.text(label_chars, min_size=1, max_size=12),
    st.text(label_chars, min_size=1, max_size=8).map(lambda t: "xn--" + t),
    st.sampled_from(["xn--", "xn--zz", "xn--bcher-kva", "xn--mnchen-3ya", "a" * 63, "a" * 64,
                     "-a", "a-", "ab--c", "www", "WWW"]),
)
suffixes = st.sampled_from(["com", "co.uk", "中国", "xn--fiqs8s", "github.io", "example",
                            "test", "", "local", "com.", "uk", "123", "xn--p1ai", "рф"])
hosts = st.builds(lambda parts, suffix: ".".join([*parts, suffix]),
                  st.lists(labels, min_size=1, max_size=5), suffixes)
websites = st.one_of(
    any_text,
    st.builds(
        lambda scheme, user, host, port, path: f"{scheme}{user}{host}{port}{path}",
        st.sampled_from(["", "http://", "https://", "HTTPS://", "//", "ftp://", "http:/",
                         "mailto:"]),
        st.sampled_from(["", "user@", "u:p@", "@"]),
        hosts,
        st.sampled_from(["", ":8443", ":", ":99999", ":x"]),
        st.sampled_from(["", "/", "/a?b#c", "?q", "#f", "/" + "p" * 300, "\\x"]),
    ),
    st.integers(min_value=250, max_value=320).map(lambda n: "https://" + "a" * n + ".com"),
)
emails = st.one_of(any_text, st.builds(lambda local, host: f"{local}@{host}",
                                       st.text(max_size=10), hosts))


def is_valid_hostname(domain: str) -> bool:
    """A lower-case A-label host name with a public-looking shape (RFC 1035, RFC 5891)."""
    if not domain.isascii() or domain != domain.lower() or len(domain) > 253:
        return False
    parts = domain.split(".")
    if len(parts) < 2:
        return False
    for label in parts:
        if not 0 < len(label) <= 63 or label[0] == "-" or label[-1] == "-":
            return False
        if not all(c.isalnum() or c == "-" for c in label):
            return False
    try:
        idna.decode(domain)  # each xn-- label holds valid punycode of a valid U-label
    except (idna.IDNAError, UnicodeError):
        return False
    return True


@given(websites)
@example("https://xn--zz.com")  # a punycode label that decodes to nothing valid
@example("http://" + "a" * 250 + ".com")
@PURE
def test_a_website_gives_a_valid_host_name_or_a_reason(website):
    result = extract_domain(website, source="Website")
    assert result.source == "Website"
    if result.ok:
        assert result.domain is not None
        assert is_valid_hostname(result.domain), result
        assert extract_domain(result.domain).domain == result.domain, "stable on its output"
    else:
        assert isinstance(result.reason, DomainReason)
        assert result.detail
        assert result.domain is None or is_valid_hostname(result.domain), result


@given(hosts)
@PURE
def test_an_idn_website_and_its_punycode_give_the_same_domain(host):
    unicode_form = extract_domain(f"https://{host}/")
    if not unicode_form.ok:
        return
    assert unicode_form.domain is not None
    assert extract_domain(unicode_form.domain).domain == unicode_form.domain
    assert extract_domain(idna.decode(unicode_form.domain)).domain == unicode_form.domain


provided_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text
    | st.decimals(allow_nan=True) | st.datetimes() | st.dates()
    | st.text(max_size=5).map(lambda t: t * 20_000),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=10,
)
provider_answers = st.dictionaries(
    st.sampled_from([f.api_name for f in catalogue.CATALOGUE] + ["Name", "Ily_Nope__c"]),
    provided_values, max_size=8,
)


class AnsweringProvider:
    """A real in-process provider answering every domain with the given values."""

    name = "fuzz"

    def __init__(self, values: Mapping[str, object], evidence: str | None) -> None:
        self.values, self.evidence = values, evidence

    def lookup(self, domain: str) -> Lookup:
        return Lookup(self.name, domain, found=True, values=self.values, evidence=self.evidence)

    def lookup_many(self, domains: Iterable[str]) -> Mapping[str, Lookup | ProviderError]:
        return {d: self.lookup(d) for d in domains}


@given(st.sampled_from(["Account", "Lead"]),
       st.fixed_dictionaries({}, optional={"Website": websites | st.none() | st.integers(),
                                           "Email": emails, "Company": any_text}),
       provider_answers, st.none() | any_text)
@example("Lead", {"Website": "https://acme.example"}, {"Ily_Company_Name__c": "😀" * 255},
         None)  # 255 characters but 510 UTF-16 units
@example("Account", {"Website": "acme.example"}, {"Ily_Industry__c": "a\ud800b"}, None)
@PURE
def test_every_value_ilyd_would_write_fits_its_field(sobject, record, answer, evidence):
    provider = AnsweringProvider(answer, evidence)
    outcome = enrich_record(sobject, record, provider, now=NOW)
    assert outcome.status is not None
    assert_fits(sobject, outcome.values)
    if outcome.domain is not None:
        assert is_valid_hostname(outcome.domain)
    # The domain written is the one looked up: never a provider's or an input's junk.
    assert outcome.values.get(catalogue.DOMAIN.api_name) == outcome.domain
    if outcome.status is MatchStatus.MATCHED:
        assert outcome.domain == record_domain(sobject, record).domain
    (batched,) = enrich_records(sobject, [record], provider, now=NOW)
    assert batched.values == outcome.values
    assert len(inputs_hash(sobject, record)) == 64
    assert len(outcome.fingerprint()) == 64
