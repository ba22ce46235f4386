"""The SOQL parser: the AST it builds, Salesforce's syntax errors, and robustness."""

# Query texts are assembled from test literals; there is no SQL here.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ilyd.devorg.soql import SoqlError, parse
from ilyd.devorg.soql.nodes import (
    And,
    Comparison,
    CountAll,
    CountField,
    FieldPath,
    InList,
    InSubquery,
    LiteralKind,
    Not,
    Or,
    OrderKey,
)


def test_a_full_query_parses_into_a_frozen_tree() -> None:
    text = ("select Id, Owner.Profile.Name from Account a where Name like 'x%' and "
            "(Id in (select ParentId from Account) or Website = null) "
            "order by Name desc nulls last, Id limit 10 offset 5")
    query = parse(text)
    assert query.select == (FieldPath(("Id",), 7), FieldPath(("Owner", "Profile", "Name"), 11))
    assert (query.sobject, query.alias, query.limit, query.offset) == ("Account", "a", 10, 5)
    assert isinstance(query.where, And)
    like, either = query.where.items
    assert isinstance(like, Comparison)
    assert (like.op, like.value.kind, like.value.value) == ("LIKE", LiteralKind.STRING, "x%")
    assert isinstance(either, Or)
    assert isinstance(either.items[0], InSubquery)
    assert either.items[0].subquery.sobject == "Account"
    assert query.order_by == (
        OrderKey(FieldPath(("Name",), text.index("Name desc")), True, True),
        OrderKey(FieldPath(("Id",), text.index("Id limit")), False, None),
    )
    with pytest.raises(AttributeError):
        query.limit = 3  # type: ignore[misc]


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("'it\\'s \\\"q\\\" \\\\ \\n\\t\\u00e9'", LiteralKind.STRING, "it's \"q\" \\ \n\té"),
    ("42", LiteralKind.NUMBER, 42),
    ("-1.5", LiteralKind.NUMBER, -1.5),
    ("TRUE", LiteralKind.BOOLEAN, True),
    ("false", LiteralKind.BOOLEAN, False),
    ("NULL", LiteralKind.NULL, None),
    ("2024-01-31", LiteralKind.DATE, dt.date(2024, 1, 31)),
    ("2024-01-31T10:00:00Z", LiteralKind.DATETIME, dt.datetime(2024, 1, 31, 10, tzinfo=dt.UTC)),
    ("2024-01-31T10:00:00.250-08:00", LiteralKind.DATETIME,
     dt.datetime(2024, 1, 31, 18, 0, 0, 250000, tzinfo=dt.UTC)),
    ("2024-01-31T10:00:00+0530", LiteralKind.DATETIME,
     dt.datetime(2024, 1, 31, 4, 30, tzinfo=dt.UTC)),
    ("today", LiteralKind.DATE_KEYWORD, ("TODAY", None)),
    ("LAST_N_DAYS:7", LiteralKind.DATE_KEYWORD, ("LAST_N_DAYS", 7)),
])
def test_literals_decode_to_python_values(text: str, kind: LiteralKind, value: object) -> None:
    where = parse(f"SELECT Id FROM Account WHERE F = {text}").where
    assert isinstance(where, Comparison)
    assert (where.value.kind, where.value.value) == (kind, value)


def test_not_in_lists_and_not_conditions_parse() -> None:
    where = parse("SELECT Id FROM Lead WHERE NOT (Email IN ('a', 'b') AND Id NOT IN ('c'))").where
    assert isinstance(where, Not)
    assert isinstance(where.item, And)
    first, second = where.item.items
    assert isinstance(first, InList)
    assert isinstance(second, InList)
    assert (first.negated, second.negated) == (False, True)


def test_count_forms_parse() -> None:
    assert parse("SELECT COUNT() FROM Lead").select == (CountAll(7),)
    assert parse("SELECT count(Id) n FROM Lead").select == (
        CountField(FieldPath(("Id",), 13), "n", 7),)


def test_security_and_locking_clauses_are_accepted() -> None:
    query = parse("SELECT Id FROM Account WITH SECURITY_ENFORCED ORDER BY Id LIMIT 1 FOR UPDATE")
    assert query.limit == 1


SYNTAX_ERRORS = [
    ("SELECT Id FROM Account WHERE Name = 'a' AND Website = 'b' OR Industry = 'c'",
     "MALFORMED_QUERY",
     "\nWHERE Name = 'a' AND Website = 'b' OR Industry = 'c'\n"
     "                                   ^\nERROR at Row:1:Column:59\nunexpected token: 'OR'"),
    ("SELECT Id FROM Account WHERE Name = 'a' OR Website = 'b' AND Industry = 'c'",
     "MALFORMED_QUERY",
     "\nWHERE Name = 'a' OR Website = 'b' AND Industry = 'c'\n"
     "                                  ^\nERROR at Row:1:Column:58\nunexpected token: 'AND'"),
    ("SELECT Id FROM Account WHERE Name = 'a' AND NOT Website = 'b'", "MALFORMED_QUERY",
     "\nFROM Account WHERE Name = 'a' AND NOT Website = 'b'\n"
     "                                  ^\nERROR at Row:1:Column:45\nunexpected token: 'NOT'"),
    ("SELECT Id\nFROM Contact\nWHERE AccountId = '0014000000p6XlS' AND LastName LIKE 'test' "
     "OR email LIKE 'test'", "MALFORMED_QUERY",
     "\n'0014000000p6XlS' AND LastName LIKE 'test' OR email LIKE 'test'\n"
     "                                           ^\nERROR at Row:3:Column:62\n"
     "unexpected token: 'OR'"),
    ("SELECT Id, FROM Account", "MALFORMED_QUERY",
     "\nSELECT Id, FROM Account\n           ^\nERROR at Row:1:Column:12\n"
     "unexpected token: 'FROM'"),
    ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY",
     "\nSELECT Id FROM Account WHERE\n                            ^\nERROR at Row:1:Column:29\n"
     "unexpected token: '<EOF>'"),
    ("SELECT Id FROM Account GROUP BY Name", "MALFORMED_QUERY",
     "\nSELECT Id FROM Account GROUP BY Name\n                       ^\nERROR at Row:1:Column:24\n"
     "unexpected token: 'GROUP'"),
    ("SELECT Id FROM Account WHERE Name NOT LIKE 'x'", "MALFORMED_QUERY",
     "\nId FROM Account WHERE Name NOT LIKE 'x'\n                               ^\n"
     "ERROR at Row:1:Column:39\nunexpected token: 'LIKE'"),
    ("SELECT Id FROM Account WHERE Name = \"x\"", "MALFORMED_QUERY",
     "\nSELECT Id FROM Account WHERE Name = \"x\"\n                                    ^\n"
     "ERROR at Row:1:Column:37\nline 1:37 no viable alternative at character '\"'"),
    ("SELECT Id FROM Account WHERE CreatedDate > 2024-01-01T10:00:00", "MALFORMED_QUERY",
     "\nCreatedDate > 2024-01-01T10:00:00\n                                 ^\n"
     "ERROR at Row:1:Column:63\nline 1:63 no viable alternative at character '<EOF>'"),
    ("SELECT Id FROM Account WHERE Name = 'a\\qb'", "MALFORMED_QUERY",
     "\nSELECT Id FROM Account WHERE Name = 'a\\qb'\n                                    ^\n"
     "ERROR at Row:1:Column:37\nInvalid string literal 'a\\qb'. Illegal character sequence "
     "'\\q' in string literal."),
    ("SELECT COUNT(), Id FROM Account", "MALFORMED_QUERY",
     "\nSELECT COUNT(), Id FROM Account\n              ^\nERROR at Row:1:Column:15\n"
     "unexpected token: ','"),
    ("SELECT Id FROM Account LIMIT 5 OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE",
     "Maximum SOQL offset allowed is 2000"),
    ("   ", "MALFORMED_QUERY", "SOQL statements cannot be empty or null"),
]


@pytest.mark.parametrize(("text", "code", "message"), SYNTAX_ERRORS)
def test_syntax_errors_carry_salesforce_code_and_caret_block(
    text: str, code: str, message: str
) -> None:
    with pytest.raises(SoqlError) as caught:
        parse(text)
    assert (caught.value.error_code, caught.value.message) == (code, message)


_PIECES = st.sampled_from([
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "INCLUDES", "(", ")", ",",
    ".", "'", "'x'", "\\", "=", "!=", "<>", "<", ">=", ":", "0", "-1", "2.5", "2024-01-31",
    "2024-01-31T10:00:00Z", "2024-02-30", "Id", "Name", "Owner", "LAST_N_DAYS", "TODAY",
    "COUNT", "ORDER", "BY", "DESC", "NULLS", "LAST", "LIMIT", "OFFSET", "null", "TRUE", "%",
    "_", '"', "\n", "Account",
])


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=25).map(" ".join))
def test_the_parser_raises_nothing_but_soql_errors_on_token_soup(text: str) -> None:
    codes = set()
    try:
        parse(text)
    except SoqlError as exc:
        codes.add(exc.error_code)
    assert codes <= {"MALFORMED_QUERY", "NUMBER_OUTSIDE_VALID_RANGE"}


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
def test_the_parser_raises_nothing_but_soql_errors_on_arbitrary_text(text: str) -> None:
    messages = []
    for candidate in (text, "SELECT Id FROM Account WHERE " + text):
        try:
            parse(candidate)
        except SoqlError as exc:
            messages.append(exc.message)
    assert all(messages)
