"""enrich_record: a record's domain, the provider's answer and the coerced Ily values."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ilyd.enrich import fields as f
from ilyd.enrich.coerce import coerce_value, format_datetime
from ilyd.enrich.dataset import DatasetProvider, DatasetSettings, sample_dataset_path
from ilyd.enrich.provider import Lookup, MatchStatus
from ilyd.enrich.values import enrich_record, enrich_records
from ilyd.errors import ProviderError

NOW = datetime(2024, 5, 1, 12, 34, 56, 789000, tzinfo=UTC)
STAMP = "2024-05-01T12:34:56.789Z"


class ScriptedProvider:
    """A real Provider whose answers are given per domain (an exception is raised)."""

    name = "scripted"

    def __init__(self, answers: Mapping[str, Lookup | Exception]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def lookup(self, domain: str) -> Lookup:
        self.asked.append(domain)
        answer = self.answers.get(domain, Lookup(provider=self.name, domain=domain, found=False))
        if isinstance(answer, Exception):
            raise answer
        return answer

    def lookup_many(self, domains: Iterable[str]) -> Mapping[str, Lookup | ProviderError]:
        out: dict[str, Lookup | ProviderError] = {}
        for domain in domains:
            try:
                out[domain] = self.lookup(domain)
            except ProviderError as exc:
                out[domain] = exc
        return out

    def close(self) -> None:
        """Nothing to release."""


@pytest.fixture(scope="module")
def sample() -> DatasetProvider:
    return DatasetProvider(DatasetSettings(path=sample_dataset_path(), name="sample"))


def test_a_known_company_is_matched_with_typed_values(sample: DatasetProvider) -> None:
    outcome = enrich_record("Account", {"Website": "https://www.acme.example/about"}, sample,
                            now=NOW)
    assert outcome.status is MatchStatus.MATCHED
    assert (outcome.domain, outcome.domain_source, outcome.source) == (
        "acme.example", "Website", "sample")
    values = outcome.values
    assert values["Ily_Match_Status__c"] == "Matched"
    assert values["Ily_Domain__c"] == "acme.example"
    assert values["Ily_Source__c"] == "sample"
    assert values["Ily_Last_Enriched__c"] == STAMP
    assert values["Ily_Company_Name__c"] == "Acme Corporation"
    assert values["Ily_Employee_Count__c"] == 12000  # CSV text became a number
    assert isinstance(values["Ily_Monthly_Spend_Estimate__c"], int)
    assert values["Ily_Technology_Evidence__c"] is None
    assert set(values) == {x.api_name for x in f.CATALOGUE}
    assert not outcome.retryable


def test_an_unknown_company_is_not_found_and_clears_company_fields(
    sample: DatasetProvider,
) -> None:
    outcome = enrich_record("Lead", {"Website": None, "Email": "jo@unknown-co.example"}, sample,
                            now=NOW)
    assert outcome.status is MatchStatus.NOT_FOUND
    assert outcome.domain_source == "Email"
    assert outcome.values["Ily_Company_Name__c"] is None
    assert outcome.values["Ily_Domain__c"] == "unknown-co.example"


def test_free_mail_and_junk_never_reach_the_provider() -> None:
    provider = ScriptedProvider({})
    free = enrich_record("Lead", {"Email": "bob@gmail.com"}, provider, now=NOW)
    junk = enrich_record("Account", {"Website": "n/a"}, provider, now=NOW)
    blank = enrich_record("Account", {}, provider, now=NOW)
    assert provider.asked == []
    assert (free.status, free.values["Ily_Domain__c"]) == (MatchStatus.FREE_EMAIL, "gmail.com")
    assert (junk.status, junk.values["Ily_Domain__c"]) == (MatchStatus.INVALID_DOMAIN, None)
    assert blank.status is MatchStatus.INVALID_DOMAIN
    assert free.values["Ily_Source__c"] is None
    assert free.values["Ily_Company_Name__c"] is None


def test_a_provider_proving_the_domain_dead_gives_invalid_domain() -> None:
    provider = ScriptedProvider(
        {"gone.example": Lookup(provider="dns", domain="gone.example", found=False, invalid=True)})
    outcome = enrich_record("Account", {"Website": "gone.example"}, provider, now=NOW)
    assert outcome.status is MatchStatus.INVALID_DOMAIN
    assert outcome.values["Ily_Source__c"] == "dns"


def test_evidence_goes_to_the_evidence_field() -> None:
    lookup = Lookup(provider="dns", domain="acme.example", found=True,
                    values={"Ily_Email_Provider__c": "Google Workspace"},
                    evidence="MX acme.example -> smtp.google.com")
    outcome = enrich_record("Account", {"Website": "acme.example"},
                            ScriptedProvider({"acme.example": lookup}), now=NOW)
    assert outcome.values["Ily_Technology_Evidence__c"] == "MX acme.example -> smtp.google.com"
    assert outcome.values["Ily_Email_Provider__c"] == "Google Workspace"


def test_a_retryable_failure_writes_nothing() -> None:
    error = ProviderError("vendor timed out", retryable=True, reason="timeout", retry_after=30)
    outcome = enrich_record("Account", {"Website": "acme.example"},
                            ScriptedProvider({"acme.example": error}), now=NOW)
    assert outcome.retryable
    assert outcome.status is None
    assert dict(outcome.values) == {}
    assert (outcome.error, outcome.error_reason, outcome.retry_after) == (
        "vendor timed out", "timeout", 30)


def test_a_permanent_failure_marks_error_and_keeps_company_fields() -> None:
    error = ProviderError("vendor rejected the domain", retryable=False, reason="invalid_input")
    outcome = enrich_record("Account", {"Website": "acme.example"},
                            ScriptedProvider({"acme.example": error}), now=NOW)
    assert outcome.status is MatchStatus.ERROR
    assert set(outcome.values) == {"Ily_Domain__c", "Ily_Match_Status__c",
                                   "Ily_Last_Enriched__c", "Ily_Source__c"}
    assert outcome.error_reason == "invalid_input"


def test_a_provider_bug_is_an_error_for_that_record_only() -> None:
    outcome = enrich_record("Account", {"Website": "acme.example"},
                            ScriptedProvider({"acme.example": KeyError("oops")}), now=NOW)
    assert outcome.status is MatchStatus.ERROR
    assert outcome.error_reason == "provider_bug"


def test_provider_values_outside_the_catalogue_are_dropped() -> None:
    lookup = Lookup(provider="x", domain="acme.example", found=True,
                    values={"Ily_Company_Name__c": "Acme", "Ily_Match_Status__c": "Hacked",
                            "Name": "nope"})
    outcome = enrich_record("Account", {"Website": "acme.example"},
                            ScriptedProvider({"acme.example": lookup}), now=NOW)
    assert outcome.values["Ily_Match_Status__c"] == "Matched"
    assert "Name" not in outcome.values


def test_fingerprint_ignores_the_timestamp_only(sample: DatasetProvider) -> None:
    first = enrich_record("Account", {"Website": "acme.example"}, sample, now=NOW)
    later = enrich_record("Account", {"Website": "acme.example"}, sample,
                          now=NOW + timedelta(hours=1))
    other = enrich_record("Account", {"Website": "globex.test"}, sample, now=NOW)
    assert first.fingerprint() == later.fingerprint()
    assert first.fingerprint() != other.fingerprint()
    gone = ScriptedProvider({"acme.example": ProviderError("gone", retryable=False)})
    failed = enrich_record("Account", {"Website": "acme.example"}, gone, now=NOW)
    unknown = enrich_record("Account", {"Website": "nobody.example"}, sample, now=NOW)
    for outcome in (first, later, other, failed, unknown,
                    enrich_record("Lead", {"Email": "jo@gmail.com"}, sample, now=NOW)):
        # The stored hashes of every record ilyd wrote are this: it must never change.
        stable = {k: v for k, v in outcome.values.items() if k != f.LAST_ENRICHED.api_name}
        encoded = json.dumps(stable, sort_keys=True, default=str, separators=(",", ":"))
        assert outcome.fingerprint() == hashlib.sha256(encoded.encode()).hexdigest()


def test_enrich_records_asks_once_per_domain_and_keeps_order() -> None:
    provider = ScriptedProvider({
        "acme.example": Lookup(provider="scripted", domain="acme.example", found=True,
                               values={"Ily_Company_Name__c": "Acme"}),
        "flaky.example": ProviderError("later", retryable=True),
    })
    records = [{"Website": "acme.example"}, {"Website": "www.acme.example"},
               {"Website": "n/a"}, {"Website": "flaky.example"}]
    outcomes = enrich_records("Account", records, provider, now=NOW)
    assert sorted(provider.asked) == ["acme.example", "flaky.example"]
    assert [o.status for o in outcomes] == [MatchStatus.MATCHED, MatchStatus.MATCHED,
                                            MatchStatus.INVALID_DOMAIN, None]


def test_the_whole_sample_enriches_without_a_single_unfit_value(sample: DatasetProvider,
                                                                tmp_path: Path) -> None:
    by_name = f.by_api_name()
    for domain in ("acme.example", "globex.test", "initech.example", "hooli.example"):
        outcome = enrich_record("Lead", {"Website": domain}, sample, now=NOW)
        for name, value in outcome.values.items():
            field = by_name[name]
            if isinstance(value, str) and field.max_chars is not None:
                assert len(value) <= field.max_chars


# -- coercion ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("field", "raw", "expected"),
    [
        (f.COMPANY_NAME, "  Acme  ", "Acme"),
        (f.COMPANY_NAME, "", None),
        (f.COMPANY_NAME, None, None),
        (f.COMPANY_NAME, 42, "42"),
        (f.COMPANY_NAME, 42.0, "42"),
        (f.COMPANY_NAME, 1.5, "1.5"),
        (f.COMPANY_NAME, True, "true"),
        (f.COMPANY_NAME, float("nan"), None),
        (f.COMPANY_NAME, "Ac\x00me\x07", "Acme"),
        (f.COMPANY_NAME, {"a": 1}, None),
        (f.COMPANY_NAME, "x" * 300, "x" * 255),
        (f.EMPLOYEE_RANGE, "y" * 50, "y" * 40),
        (f.SAAS_PRODUCTS, ["Slack", "Zoom", "Slack", "", None], "Slack; Zoom"),
        (f.SAAS_PRODUCTS, ("A" * 3990, "B" * 20), "A" * 3990),
        (f.TECHNOLOGIES, "z" * 40000, "z" * 32768),
        (f.EMPLOYEE_RANGE, ["r" * 50, "s"], "r" * 40),
        (f.EMPLOYEE_COUNT, "1,200", 1200),
        (f.EMPLOYEE_COUNT, " 1200.6 ", 1201),
        (f.EMPLOYEE_COUNT, "10001+", 10001),
        (f.EMPLOYEE_COUNT, 12.5, 12),
        (f.EMPLOYEE_COUNT, Decimal("7"), 7),
        (f.EMPLOYEE_COUNT, "lots", None),
        (f.EMPLOYEE_COUNT, "", None),
        (f.EMPLOYEE_COUNT, True, None),
        (f.EMPLOYEE_COUNT, float("inf"), None),
        (f.EMPLOYEE_COUNT, "NaN", None),
        (f.EMPLOYEE_COUNT, 10**18, None),
        (f.EMPLOYEE_COUNT, 10**18 - 1, 10**18 - 1),
        (f.EMPLOYEE_COUNT, Decimal("1E+30"), None),
        (f.EMPLOYEE_COUNT, "1e400", None),
        (f.EMPLOYEE_COUNT, 1e300, None),
        (f.EMPLOYEE_COUNT, "999999999999999999.6", None),
        (f.MONTHLY_SPEND_ESTIMATE, "$5,000", 5000),
        (f.MONTHLY_SPEND_ESTIMATE, 10**16, None),
        (f.MATCH_STATUS, "Matched", "Matched"),
        (f.MATCH_STATUS, "matched", None),
        (f.LAST_ENRICHED, NOW, STAMP),
        (f.LAST_ENRICHED, datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
         "2024-05-01T12:00:00.000Z"),
        (f.LAST_ENRICHED, datetime(2024, 5, 1, 12, 0), "2024-05-01T12:00:00.000Z"),
        (f.LAST_ENRICHED, date(2024, 5, 1), "2024-05-01T00:00:00.000Z"),
        (f.LAST_ENRICHED, "2024-05-01T12:00:00Z", "2024-05-01T12:00:00.000Z"),
        (f.LAST_ENRICHED, "yesterday", None),
        (f.LAST_ENRICHED, 1714560000, None),
    ],
)
def test_values_are_coerced_to_the_field_type_and_size(
    field: f.IlyField, raw: object, expected: object
) -> None:
    assert coerce_value(field, raw) == expected


def test_datetimes_are_formatted_for_salesforce() -> None:
    assert format_datetime(datetime(2024, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)) == (
        "2024-01-02T03:04:05.006Z")


_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.floats(1e15, 1e30),
              st.text(), st.decimals(allow_nan=True, allow_infinity=True), st.datetimes(),
              st.dates()),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children,
                                                                       max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(f.CATALOGUE), raw=_values)
def test_coercion_never_raises_and_always_fits(field: f.IlyField, raw: object) -> None:
    value = coerce_value(field, raw)
    if value is None:
        return
    if field.type in (f.FieldType.NUMBER, f.FieldType.CURRENCY):
        assert isinstance(value, int)
        assert abs(value) < 10 ** (field.precision or 18)
    elif field.type is f.FieldType.PICKLIST:
        assert value in field.picklist_values
    else:
        assert isinstance(value, str)
        assert value
        if field.max_chars is not None:
            assert len(value) <= field.max_chars
