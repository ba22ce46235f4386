"""Coerced values are remembered by their inputs: a remembered answer must be exactly
what coercing afresh gives, whatever came before it."""

from __future__ import annotations

from datetime import UTC, datetime

from ilyd.enrich.domain import record_domain
from ilyd.enrich.provider import Lookup
from ilyd.enrich.values import outcome_from_lookup

NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
LATER = datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC)
DOMAIN = record_domain("Account", {"Website": "https://acme.example"})


def _values(values: dict[str, object], now: datetime = NOW) -> dict[str, object]:
    lookup = Lookup(provider="dataset", domain="acme.example", found=True, values=values)
    return dict(outcome_from_lookup("Account", DOMAIN, lookup, now).values)


def test_the_same_answer_twice_gives_the_same_values_with_each_own_last_enriched() -> None:
    first = _values({"Ily_Company_Name__c": " Acme\x00 Corp "})
    second = _values({"Ily_Company_Name__c": " Acme\x00 Corp "}, LATER)
    assert first["Ily_Company_Name__c"] == second["Ily_Company_Name__c"] == "Acme Corp"
    assert first["Ily_Last_Enriched__c"] == "2026-01-02T03:04:05.678Z"
    assert second["Ily_Last_Enriched__c"] == "2026-01-02T03:04:06.000Z"


def test_equal_values_of_different_types_are_coerced_each_by_its_own_type() -> None:
    # 1, 1.0 and True are equal (and hash alike) in Python but are different text.
    assert _values({"Ily_Industry__c": 1})["Ily_Industry__c"] == "1"
    assert _values({"Ily_Industry__c": True})["Ily_Industry__c"] == "true"
    assert _values({"Ily_Industry__c": 1.5})["Ily_Industry__c"] == "1.5"


def test_list_values_are_joined_whether_or_not_they_can_be_remembered() -> None:
    products = ["Slack", "Zoom", "Slack"]
    assert _values({"Ily_SaaS_Products__c": products})["Ily_SaaS_Products__c"] == "Slack; Zoom"
    assert _values({"Ily_SaaS_Products__c": tuple(products)})["Ily_SaaS_Products__c"] \
        == "Slack; Zoom"


def test_a_remembered_answer_is_not_changed_by_the_outcome_built_on_it() -> None:
    first = _values({"Ily_Company_Name__c": "Acme"})
    first["Ily_Company_Name__c"] = "changed by a caller"
    assert _values({"Ily_Company_Name__c": "Acme"})["Ily_Company_Name__c"] == "Acme"
