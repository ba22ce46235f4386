"""Values cut to their field's length before they are sent, counted as Salesforce counts:
in UTF-16 units, so an emoji is two."""

from __future__ import annotations

from ilyd.enrich.coerce import sf_length
from ilyd.pipeline.truncation import fit


def test_text_with_characters_outside_the_bmp_is_cut_to_the_fields_length_in_utf16_units(
        ) -> None:
    values = {"Ily_Company_Name__c": "\U0001F680" * 10, "Ily_Industry__c": "ok"}
    fit("Account", "001000000000001AAA", values,
        {"Ily_Company_Name__c": 5, "Ily_Industry__c": 5})
    assert values["Ily_Company_Name__c"] == "\U0001F680" * 2  # 4 units: a third is 6
    assert sf_length(values["Ily_Company_Name__c"]) <= 5
    assert values["Ily_Industry__c"] == "ok"


def test_plain_text_is_cut_to_exactly_the_length() -> None:
    values = {"Ily_Company_Name__c": "abcdefgh"}
    fit("Account", "001000000000001AAA", values, {"Ily_Company_Name__c": 5})
    assert values["Ily_Company_Name__c"] == "abcde"
