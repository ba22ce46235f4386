"""What every value ilyd writes must satisfy, checked independently of ilyd's coercion."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from ilyd.enrich import fields as catalogue
from ilyd.enrich.fields import FieldType


def sf_length(text: str) -> int:
    """The length Salesforce counts: UTF-16 code units (a surrogate pair is two)."""
    return len(text.encode("utf-16-le")) // 2


def assert_fits(sobject: str, values: Mapping[str, object]) -> None:
    """Every value fits its field: type, Salesforce length, picklist, number range."""
    for name, value in values.items():
        field = catalogue.by_api_name()[name]
        assert sobject in field.objects
        if value is None:
            continue
        if field.type is FieldType.PICKLIST:
            assert value in field.picklist_values, (name, value)
        elif field.type in (FieldType.NUMBER, FieldType.CURRENCY):
            assert type(value) in (int, float), (name, value)
            assert abs(Decimal(str(value))) < Decimal(10) ** (field.precision - field.scale)
        elif field.type is FieldType.DATETIME:
            assert isinstance(value, str)
            assert datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None
        else:
            assert isinstance(value, str), (name, value)
            assert value, f"{name}: an empty text is written as None"
            assert sf_length(value) <= field.max_chars, (name, sf_length(value))
            assert value.encode("utf-8", "strict"), "no lone surrogate reaches Salesforce"
            assert "\x00" not in value
