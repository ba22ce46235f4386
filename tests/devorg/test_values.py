"""Field value conversion: repeated texts are parsed once and still checked per field."""

from __future__ import annotations

import datetime as dt

import pytest

from ilyd.devorg.schema import FieldDef
from ilyd.devorg.values import FieldValueError, coerce, to_csv

STAMP = "2024-05-01T12:34:56.789+02:00"


def test_a_repeated_datetime_text_gives_the_same_instant_in_csv_and_json() -> None:
    f = FieldDef("Ily_Last_Enriched__c", "datetime")
    first = coerce(f, STAMP, from_csv=True)
    assert first == dt.datetime(2024, 5, 1, 10, 34, 56, 789000, tzinfo=dt.UTC)
    assert coerce(f, STAMP, from_csv=True) == first
    assert coerce(f, STAMP) == first
    assert to_csv(first) == "2024-05-01T10:34:56.789Z"


def test_a_bad_text_fails_every_time_and_names_each_field() -> None:
    for name in ("Count_A__c", "Count_B__c"):
        f = FieldDef(name, "int")
        for _ in range(2):
            with pytest.raises(FieldValueError) as caught:
                coerce(f, "12.5", from_csv=True)
            assert caught.value.field == name
            assert caught.value.status_code == "INVALID_TYPE_ON_FIELD_IN_RECORD"
    assert coerce(FieldDef("Spend__c", "currency"), "12.5", from_csv=True) == 12.5
    assert coerce(FieldDef("Count__c", "int"), "12", from_csv=True) == 12


def test_empty_and_na_texts_stay_null_for_parsed_types() -> None:
    f = FieldDef("When__c", "datetime")
    assert coerce(f, "", from_csv=True) is None
    assert coerce(f, "#N/A", from_csv=True) is None
