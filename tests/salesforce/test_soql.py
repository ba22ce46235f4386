"""SOQL literal escaping: the table of Salesforce's escape sequences, and the builders."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ilyd.devorg import soql as soql_parser
from ilyd.salesforce.soql import identifier, like_pattern, quote, quote_string, soql


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("acme.com", "'acme.com'"),
        ("O'Brien", r"'O\'Brien'"),
        ('say "hi"', r"""'say \"hi\"'"""),
        ("back\\slash", r"'back\\slash'"),
        ("line\nbreak", r"'line\nbreak'"),
        ("cr\rhere", r"'cr\rhere'"),
        ("tab\there", r"'tab\there'"),
        ("bs\bhere", r"'bs\bhere'"),
        ("ff\fhere", r"'ff\fhere'"),
        ("' OR Name != '", r"'\' OR Name != \''"),
        ("100%_off", "'100%_off'"),
        ("", "''"),
        ("naïve ünïcode ✓", "'naïve ünïcode ✓'"),
    ],
)
def test_strings_are_quoted_with_salesforce_escapes(value: str, literal: str) -> None:
    assert quote(value) == literal
    assert quote_string(value) == literal


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (42, "42"),
        (-7, "-7"),
        (2.5, "2.5"),
        (1e-5, "0.00001"),
        (Decimal("12.50"), "12.50"),
        (dt.date(2024, 5, 1), "2024-05-01"),
        (dt.datetime(2024, 5, 1, 12, 34, 56, tzinfo=dt.UTC), "2024-05-01T12:34:56Z"),
        (dt.datetime(2024, 5, 1, 12, 34, 56, 789000, tzinfo=dt.UTC), "2024-05-01T12:34:56.789Z"),
        (
            dt.datetime(2024, 5, 1, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "2024-05-01T12:00:00Z",
        ),
        (["a", "b'c"], r"('a','b\'c')"),
        (("001A",), "('001A')"),
    ],
)
def test_other_values_become_soql_literals(value: object, literal: str) -> None:
    assert quote(value) == literal


@pytest.mark.parametrize(
    "value",
    [dt.datetime(2024, 5, 1), float("nan"), float("inf"), [], object(), b"bytes", {"a": 1}],
)
def test_values_without_a_safe_literal_are_refused(value: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        quote(value)


def test_like_pattern_escapes_wildcards_and_quotes() -> None:
    assert like_pattern("50%_off's") == r"'50\%\_off\'s'"
    assert like_pattern("acme", prefix=True) == "'acme%'"
    assert like_pattern("acme", suffix=True) == "'%acme'"
    assert like_pattern("a\\b", prefix=True, suffix=True) == r"'%a\\b%'"


def test_soql_template_quotes_every_argument() -> None:
    query = soql(
        "SELECT Id FROM Lead WHERE Email = {} AND Id IN {ids} AND IsConverted = {conv}",
        "x' OR Id != '",
        ids=["00Q1", "00Q2"],
        conv=False,
    )
    assert query == (
        r"SELECT Id FROM Lead WHERE Email = 'x\' OR Id != \'' AND Id IN ('00Q1','00Q2') "
        "AND IsConverted = false"
    )


@pytest.mark.parametrize("name", ["Account", "Ily_Cloud_Spend__c", "Owner.Profile.Name"])
def test_api_names_pass_the_identifier_check(name: str) -> None:
    assert identifier(name) == name


@pytest.mark.parametrize("name", ["", "1abc", "Name, Id", "Name FROM User--", "a..b", "a b"])
def test_anything_else_fails_the_identifier_check(name: str) -> None:
    with pytest.raises(ValueError, match="API name"):
        identifier(name)


# Round trip through devorg's SOQL parser: whatever the text, the quoted literal parses
# back to exactly that text, and the query keeps its shape (no injected condition).
@settings(max_examples=300, deadline=None)
@given(text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_any_string_survives_quoting_through_the_soql_parser(text: str) -> None:
    query = soql_parser.parse(soql("SELECT Id FROM Account WHERE Name = {}", text))
    assert query.where.op == "="
    assert query.where.value.value == text


@settings(max_examples=100, deadline=None)
@given(items=st.lists(st.text(max_size=10), min_size=1, max_size=5))
def test_any_in_list_survives_quoting_through_the_soql_parser(items: list[str]) -> None:
    query = soql_parser.parse(soql("SELECT Id FROM Account WHERE Name IN {}", items))
    assert [v.value for v in query.where.values] == items
