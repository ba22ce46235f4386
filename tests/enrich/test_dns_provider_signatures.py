"""The signature table: the bundled data file is well-formed and matching is label-anchored."""

from __future__ import annotations

from pathlib import Path

import pytest

from ilyd.enrich.signatures import Category, RecordKind, load_signatures
from ilyd.errors import ConfigError


@pytest.fixture(scope="module")
def table():
    return load_signatures()


def test_every_bundled_row_names_its_vendor_documentation(table):
    assert len(table.signatures) > 80
    assert all(s.source.startswith("https://") for s in table.signatures)


def test_the_issue_s_required_products_are_covered(table):
    products = {(s.category, s.product) for s in table.signatures}
    for needed in [
        (Category.EMAIL_PROVIDER, "Google Workspace"), (Category.EMAIL_PROVIDER, "Microsoft 365"),
        (Category.EMAIL_SECURITY, "Proofpoint"), (Category.EMAIL_SECURITY, "Mimecast"),
        (Category.EMAIL_SENDING, "SendGrid"), (Category.EMAIL_SENDING, "Amazon SES"),
        (Category.DNS, "Amazon Route 53"), (Category.DNS, "NS1"),
        (Category.CDN, "Akamai"), (Category.CDN, "Fastly"),
        (Category.HOSTING, "Google Cloud"), (Category.SAAS, "Atlassian Cloud"),
    ]:
        assert needed in products


def test_suffixes_match_whole_labels_only(table):
    def products(kind: RecordKind, value: str) -> list[str]:
        return [m.signature.product for m in table.match(kind, value)]

    assert products(RecordKind.MX, "acme-com.mail.protection.outlook.com.") == ["Microsoft 365"]
    assert products(RecordKind.MX, "ACME-test.d-v1.MX.microsoft") == ["Microsoft 365"]
    assert products(RecordKind.MX, "mail.notmail.protection.outlook.com.evil.test") == []
    assert products(RecordKind.MX, "xpphosted.com") == []
    # the DNS host only: where a zone is served says nothing about where the site runs
    assert products(RecordKind.NS, "ns-cloud-b2.googledomains.com") == ["Google Cloud DNS"]
    assert products(RecordKind.NS, "ns-cloud-b2.googledomains.com.evil.test") == []


def test_txt_tokens_match_by_prefix_case_insensitively(table):
    assert [m.signature.product for m in table.match(RecordKind.TXT, "ms=ms1234")] == [
        "Microsoft 365"]
    assert table.match(RecordKind.TXT, "v=spf1 include:atlassian-domain-verification=x") == []


def test_a_bad_table_reports_every_problem(tmp_path: Path):
    bad = tmp_path / "sig.toml"
    bad.write_text(
        '[[signature]]\nproduct = "X"\ncategory = "mail"\nrecord = "mx"\nsuffix = ["x.test"]\n'
        'source = "http://x.test"\n'
        '[[signature]]\nproduct = "Y"\ncategory = "dns"\nrecord = "ns"\nregex = "("\n'
        'suffix = ["y.test"]\nsource = "https://y.test"\n'
    )
    with pytest.raises(ConfigError) as err:
        load_signatures(bad)
    text = str(err.value)
    assert "signature[0]: category" in text
    assert "signature[0]: source" in text
    assert "signature[1]: give exactly one" in text
    assert "signature[1]: regex does not compile" in text


def test_every_field_the_dns_provider_writes_is_in_the_catalogue():
    from ilyd.enrich.dns_provider import EVIDENCE_FIELD, TECHNOLOGIES_FIELD
    from ilyd.enrich.fields import by_api_name
    from ilyd.enrich.signatures import CATEGORY_FIELDS

    written = {*CATEGORY_FIELDS.values(), TECHNOLOGIES_FIELD, EVIDENCE_FIELD}
    assert written <= set(by_api_name())
