"""The fast paths of domain extraction give exactly what the general parse gives."""

from __future__ import annotations

from urllib.parse import urlsplit

import idna
from hypothesis import given, settings
from hypothesis import strategies as st

from ilyd.enrich import domain

_PIECES = st.sampled_from(["http://", "https://", "HTTPS://", "//", "ftp://", "www.", "acme",
                           ".", "-", "--", "xn--", "co.uk", "/", "?", "#", "@", ":", "8443",
                           "[", "]", "%", "é", "A", "z", "9", "_", " ", "mailto:"])
URLISH = st.lists(_PIECES, max_size=10).map("".join)


def _reference_host(text: str) -> str | None:
    if "://" not in text:
        text = "http:" + text if text.startswith("//") else "http://" + text
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return None
    return host or None


@settings(max_examples=3000, deadline=None)
@given(URLISH)
def test_the_host_fast_path_agrees_with_urlsplit(text: str) -> None:
    assert domain._host_of(text) == _reference_host(text)


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(["a", "b9", "-", "--", "xn--", "0", "."]), max_size=12)
       .map("".join))
def test_the_ldh_host_fast_path_agrees_with_the_per_label_check(host: str) -> None:
    labels = host.split(".")
    if all(domain._LDH_LABEL.fullmatch(label) and label[2:4] != "--" for label in labels):
        reference: str | None = host
    else:
        try:
            reference = idna.encode(host, uts46=True, std3_rules=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            reference = None
    assert domain._to_alabels(host) == reference


def test_extraction_results_are_cached_and_equal_for_equal_inputs() -> None:
    first = domain.extract_domain("https://www.Cached-Example.co.uk/x", source="Website")
    again = domain.extract_domain("https://www.Cached-Example.co.uk/x", source="Website")
    assert first == again
    assert first.domain == "cached-example.co.uk"
    assert domain.extract_domain("https://www.Cached-Example.co.uk/x", source="Email") \
        .source == "Email"
