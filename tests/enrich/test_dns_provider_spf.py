"""SPF include chains as the DNS provider reads them (RFC 7208 lookup accounting)."""

from __future__ import annotations

from ilyd.enrich.dns_spf import expand_spf, spf_record


def fetcher(records: dict[str, str], asked: list[str]):
    def fetch(name: str) -> list[str]:
        asked.append(name)
        return [records[name]] if name in records else []
    return fetch


def test_spf_record_is_found_among_other_txt_strings():
    assert spf_record(["google-site-verification=x", "v=spf1 -all"]) == "v=spf1 -all"
    assert spf_record(["v=spf10 nope", "hello"]) is None


def test_includes_are_followed_depth_first_and_redirect_last():
    records = {
        "a.test": "v=spf1 include:b.test ~all",
        "b.test": "v=spf1 include:c.test",
        "r.test": "v=spf1 include:d.test",
    }
    asked: list[str] = []
    chain = expand_spf("x.test", "v=spf1 redirect=r.test include:a.test -all",
                       fetcher(records, asked))
    assert asked == ["a.test", "b.test", "c.test", "r.test", "d.test"]
    assert chain.domains == ("r.test", "a.test", "b.test", "c.test", "d.test")
    assert chain.lookups == 5
    assert not chain.truncated


def test_a_mx_ptr_and_exists_count_toward_the_limit_without_being_resolved():
    asked: list[str] = []
    record = "v=spf1 a mx ptr exists:%{i}.x.test a:b.test mx:c.test ptr:d.test exists:e.test "
    record += "ip4:192.0.2.0/24 include:f.test include:g.test include:h.test -all"
    chain = expand_spf("x.test", record, fetcher({}, asked), limit=10)
    assert asked == ["f.test", "g.test"]
    assert chain.lookups == 10
    assert chain.truncated
    assert "h.test" in chain.domains


def test_macros_and_qualifiers_are_handled():
    asked: list[str] = []
    chain = expand_spf("x.test", "v=spf1 ~include:_spf.%{d}.test +include:ok.test -all",
                       fetcher({}, asked))
    assert asked == ["ok.test"]
    assert chain.domains == ("ok.test",)


def test_loops_and_self_includes_are_fetched_once():
    records = {"a.test": "v=spf1 include:x.test include:a.test"}
    asked: list[str] = []
    chain = expand_spf("x.test", "v=spf1 include:a.test include:a.test", fetcher(records, asked))
    assert asked == ["a.test"]
    assert chain.domains == ("a.test",)
