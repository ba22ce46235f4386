"""The SOQL evaluator against a small in-test org: results, shapes, errors, streaming."""

# The SOQL under test is built from the test's own record ids; there is no SQL here.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator, Mapping

import pytest

from ilyd.devorg.soql import FieldInfo, SoqlError, execute, parse

UTC = dt.UTC
NOW = dt.datetime(2024, 2, 1, 12, 0, tzinfo=UTC)


def _ids(prefix: str, n: int) -> str:
    # All-digit bodies have the case-safety suffix "AAA".
    return f"{prefix}{n:012d}AAA"


P1, P2 = _ids("00e", 1), _ids("00e", 2)
U1, U2, U3 = _ids("005", 1), _ids("005", 2), _ids("005", 3)
A1, A2, A3, A4, A5, A6 = (_ids("001", n) for n in range(1, 7))
PS1, PS2 = _ids("0PS", 1), _ids("0PS", 2)


def _f(name: str, kind: str = "string", *refs: str, rel: str | None = None, **kw: bool):
    return FieldInfo(name, kind, tuple(refs), rel, **kw)


OBJECTS: dict[str, list[FieldInfo]] = {
    "Profile": [_f("Id", "id"), _f("Name")],
    "User": [_f("Id", "id"), _f("Name"), _f("IsActive", "boolean"),
             _f("ProfileId", "reference", "Profile", rel="Profile")],
    "Account": [
        _f("Id", "id"), _f("Name"), _f("Website", "url"), _f("Industry", "picklist"),
        _f("NumberOfEmployees", "int"), _f("AnnualRevenue", "currency"),
        _f("OwnerId", "reference", "User", rel="Owner"),
        _f("ParentId", "reference", "Account", rel="Parent"),
        _f("CreatedDate", "datetime"), _f("LastActivityDate", "date"),
        _f("IsDeleted", "boolean"), _f("Tags__c", "multipicklist"),
        _f("Description", "textarea", filterable=False, sortable=False),
    ],
    "Lead": [_f("Id", "id"), _f("Email", "email"), _f("Company"),
             _f("IsConverted", "boolean")],
    "PermissionSet": [_f("Id", "id"), _f("Name"), _f("IsOwnedByProfile", "boolean")],
    "PermissionSetAssignment": [
        _f("Id", "id"), _f("AssigneeId", "reference", "User", rel="Assignee"),
        _f("PermissionSetId", "reference", "PermissionSet", rel="PermissionSet"),
    ],
}


def _account(record_id: str, name: str, **values: object) -> dict[str, object]:
    return {"Id": record_id, "Name": name, "IsDeleted": False} | values


ROWS: dict[str, list[dict[str, object]]] = {
    "Profile": [{"Id": P1, "Name": "System Administrator"}, {"Id": P2, "Name": "Standard User"}],
    "User": [
        {"Id": U1, "Name": "Ada Admin", "IsActive": True, "ProfileId": P1},
        {"Id": U2, "Name": "Bob User", "IsActive": True, "ProfileId": P2},
        {"Id": U3, "Name": "Cy Nobody", "IsActive": False, "ProfileId": None},
    ],
    "Account": [
        _account(A1, "Acme", Website="acme.com", Industry="Tech", NumberOfEmployees=100,
                 AnnualRevenue=1.5e6, OwnerId=U1,
                 CreatedDate=dt.datetime(2024, 1, 10, 10, 0, tzinfo=UTC),
                 LastActivityDate=dt.date(2024, 1, 31), Tags__c="gold;emea"),
        _account(A2, "acme labs", Industry="Tech", NumberOfEmployees=50, OwnerId=U2,
                 ParentId=A1, CreatedDate=dt.datetime(2024, 2, 1, 0, 0, tzinfo=UTC),
                 Tags__c="silver"),
        _account(A3, "Globex", Website="globex.example", OwnerId=U3,
                 CreatedDate=dt.datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC)),
        _account(A4, "Initech", Website="initech.io", Industry="Finance",
                 NumberOfEmployees=2000, OwnerId=U1,
                 CreatedDate=dt.datetime(2024, 3, 5, 8, 30, tzinfo=UTC),
                 LastActivityDate=dt.date(2024, 1, 1), Tags__c="gold;apac"),
        _account(A5, "Umbrella_50%", Industry="Bio", NumberOfEmployees=7,
                 CreatedDate=dt.datetime(2024, 1, 31, 23, 0, tzinfo=UTC)),
        _account(A6, "Gone Inc", IsDeleted=True, Industry="Tech",
                 CreatedDate=dt.datetime(2024, 1, 5, tzinfo=UTC)),
    ],
    "Lead": [],
    "PermissionSet": [{"Id": PS1, "Name": "Ily_Integration", "IsOwnedByProfile": False},
                      {"Id": PS2, "Name": "X00e", "IsOwnedByProfile": True}],
    "PermissionSetAssignment": [
        {"Id": _ids("0Pa", 1), "AssigneeId": U1, "PermissionSetId": PS1},
        {"Id": _ids("0Pa", 2), "AssigneeId": U2, "PermissionSetId": PS2},
    ],
}


class Schema:
    """The in-test org's describe: every field readable."""

    def __init__(self, objects: Mapping[str, list[FieldInfo]]) -> None:
        self.objects = {name.lower(): (name, fields) for name, fields in objects.items()}

    def sobject(self, name: str) -> str | None:
        found = self.objects.get(name.lower())
        return found[0] if found else None

    def fields(self, sobject: str) -> Mapping[str, FieldInfo]:
        return {f.name.lower(): f for f in self.objects[sobject.lower()][1]}


class Store:
    """Records in lists; remembers every scan and get so tests can see the access path."""

    def __init__(self, rows: Mapping[str, list[dict[str, object]]]) -> None:
        self.rows = rows
        self.calls: list[tuple[str, ...]] = []

    def scan(self, sobject: str) -> Iterator[Mapping[str, object]]:
        self.calls.append(("scan", sobject))
        yield from self.rows[sobject]

    def get(self, sobject: str, record_id: str) -> Mapping[str, object] | None:
        self.calls.append(("get", sobject, record_id))
        return next((r for r in self.rows[sobject] if r["Id"] == record_id
                     and not r.get("IsDeleted")), None)


SCHEMA = Schema(OBJECTS)


def run(soql: str, store: Store | None = None, **kw: bool) -> list[dict]:
    return list(execute(parse(soql), SCHEMA, store or Store(ROWS), now=NOW, **kw).records)


def ids(soql: str, **kw: bool) -> list[str]:
    return [r["Id"] for r in run(soql, **kw)]


# -- valid queries: (SOQL, expected Ids in order) ----------------------------------------
ORDERED = [
    ("SELECT Id FROM Account ORDER BY Name", [A1, A2, A3, A4, A5]),
    ("select id from account order by name desc", [A5, A4, A3, A2, A1]),
    ("SELECT Id FROM Account ORDER BY Website", [A2, A5, A1, A3, A4]),
    ("SELECT Id FROM Account ORDER BY Website NULLS LAST", [A1, A3, A4, A2, A5]),
    ("SELECT Id FROM Account ORDER BY Website DESC", [A4, A3, A1, A2, A5]),
    ("SELECT Id FROM Account ORDER BY Website DESC NULLS FIRST", [A2, A5, A4, A3, A1]),
    ("SELECT Id FROM Account ORDER BY Industry DESC, Name ASC", [A1, A2, A4, A5, A3]),
    ("SELECT Id FROM Account ORDER BY Owner.Name, Name DESC", [A5, A4, A1, A2, A3]),
    ("SELECT Id FROM Account ORDER BY NumberOfEmployees DESC LIMIT 2", [A4, A1]),
    ("SELECT Id FROM Account ORDER BY NumberOfEmployees LIMIT 2 OFFSET 1", [A5, A2]),
    ("SELECT Id FROM Account ORDER BY CreatedDate LIMIT 1", [A3]),
    ("SELECT Id FROM Account ORDER BY Name OFFSET 3", [A4, A5]),
    ("SELECT Id FROM Account WHERE Industry = 'tech' ORDER BY Name", [A1, A2]),
]

FILTERED = [
    ("SELECT Id FROM Account WHERE Name = 'ACME'", {A1}),
    ("SELECT Id FROM Account WHERE Name != 'Acme'", {A2, A3, A4, A5}),
    ("SELECT Id FROM Account WHERE Name <> 'Acme'", {A2, A3, A4, A5}),
    ("SELECT Id FROM Account WHERE Website = null", {A2, A5}),
    ("SELECT Id FROM Account WHERE Website != NULL", {A1, A3, A4}),
    ("SELECT Id FROM Account WHERE Name LIKE 'acme%'", {A1, A2}),
    ("SELECT Id FROM Account WHERE Name LIKE '_lobe_'", {A3}),
    ("SELECT Id FROM Account WHERE Name LIKE '%\\_50\\%'", {A5}),
    ("SELECT Id FROM Account WHERE Name LIKE '%50%'", {A5}),
    ("SELECT Id FROM Account WHERE NumberOfEmployees > 50", {A1, A4}),
    ("SELECT Id FROM Account WHERE NumberOfEmployees >= 50", {A1, A2, A4}),
    ("SELECT Id FROM Account WHERE NumberOfEmployees < 50", {A5}),
    ("SELECT Id FROM Account WHERE NumberOfEmployees <= 7.0", {A5}),
    ("SELECT Id FROM Account WHERE AnnualRevenue > 1000000", {A1}),
    ("SELECT Id FROM Account WHERE Industry IN ('Tech', 'bio')", {A1, A2, A5}),
    ("SELECT Id FROM Account WHERE Industry NOT IN ('Tech', 'Bio')", {A3, A4}),
    ("SELECT Id FROM Account WHERE Industry IN ('Finance', null)", {A3, A4}),
    ("SELECT Id FROM Account WHERE Name > 'h'", {A4, A5}),
    ("SELECT Id FROM Account WHERE Industry = 'Tech' AND NumberOfEmployees > 60", {A1}),
    ("SELECT Id FROM Account WHERE Industry = 'Bio' OR Website = 'acme.com'", {A1, A5}),
    ("SELECT Id FROM Account WHERE Industry = 'Tech' AND (Name = 'Acme' OR Name = 'x')",
     {A1}),
    ("SELECT Id FROM Account WHERE (Industry = 'Tech' AND Website = null) OR Name = 'Globex'",
     {A2, A3}),
    ("SELECT Id FROM Account WHERE NOT Industry = 'Tech'", {A3, A4, A5}),
    ("SELECT Id FROM Account WHERE Name != 'x' AND (NOT (Industry = 'Tech'))", {A3, A4, A5}),
    ("SELECT Id FROM Account WHERE Owner.Name = 'Ada Admin'", {A1, A4}),
    ("SELECT Id FROM Account WHERE Owner.Profile.Name LIKE 'system%'", {A1, A4}),
    ("SELECT Id FROM Account WHERE Owner.ProfileId = null", {A3, A5}),
    ("SELECT Id FROM Account WHERE Parent.Name = 'Acme'", {A2}),
    ("SELECT Id FROM Account WHERE Account.Name = 'Globex'", {A3}),
    ("SELECT Id FROM Account WHERE OwnerId = '005000000000001'", {A1, A4}),
    (f"SELECT Id FROM Account WHERE Id = '{A3[:15]}'", {A3}),
    ("SELECT Id FROM Account WHERE Id = '001000000000003aaA'", {A3}),
    (f"SELECT Id FROM Account WHERE Id IN ('{A1}', '{A4[:15]}')", {A1, A4}),
    (f"SELECT Id FROM Account WHERE Id NOT IN ('{A1}', '{A4}')", {A2, A3, A5}),
    ("SELECT Id FROM Account WHERE CreatedDate > 2024-01-31T00:00:00Z", {A2, A4, A5}),
    ("SELECT Id FROM Account WHERE CreatedDate >= 2024-02-01T01:00:00+01:00", {A2, A4}),
    ("SELECT Id FROM Account WHERE CreatedDate < 2024-01-01T00:00:00.000Z", {A3}),
    ("SELECT Id FROM Account WHERE CreatedDate = 2023-12-31T23:59:59Z", {A3}),
    ("SELECT Id FROM Account WHERE LastActivityDate = 2024-01-31", {A1}),
    ("SELECT Id FROM Account WHERE LastActivityDate < 2024-01-31", {A4}),
    ("SELECT Id FROM Account WHERE CreatedDate = TODAY", {A2}),
    ("SELECT Id FROM Account WHERE CreatedDate = YESTERDAY", {A5}),
    ("SELECT Id FROM Account WHERE CreatedDate = LAST_N_DAYS:30", {A1, A2, A5}),
    ("SELECT Id FROM Account WHERE CreatedDate < LAST_N_DAYS:30", {A3}),
    ("SELECT Id FROM Account WHERE CreatedDate > TODAY", {A4}),
    ("SELECT Id FROM Account WHERE CreatedDate = THIS_YEAR", {A1, A2, A4, A5}),
    ("SELECT Id FROM Account WHERE CreatedDate = LAST_MONTH", {A1, A5}),
    ("SELECT Id FROM Account WHERE LastActivityDate = THIS_MONTH", set()),
    ("SELECT Id FROM Account WHERE LastActivityDate = LAST_N_DAYS:1", {A1}),
    ("SELECT Id FROM Account WHERE Tags__c INCLUDES ('gold;apac', 'silver')", {A2, A4}),
    ("SELECT Id FROM Account WHERE Tags__c EXCLUDES ('gold')", {A2, A3, A5}),
    ("SELECT Id FROM Account WHERE Id IN (SELECT ParentId FROM Account)", {A1}),
    ("SELECT Id FROM Account WHERE OwnerId IN (SELECT AssigneeId FROM "
     "PermissionSetAssignment WHERE PermissionSet.IsOwnedByProfile = false)", {A1, A4}),
    ("SELECT Id FROM Account WHERE OwnerId NOT IN (SELECT Id FROM User WHERE IsActive = true)",
     {A3, A5}),
    ("SELECT Id FROM Account WHERE Id IN (SELECT Id FROM Account WHERE Industry = 'Nope')",
     set()),
    ("SELECT Id FROM Account WHERE Name = 'it\\'s' OR Name = 'Initech'", {A4}),
]


@pytest.mark.parametrize(("soql", "expected"), ORDERED)
def test_ordered_queries_return_records_in_salesforce_order(soql: str, expected: list) -> None:
    assert ids(soql) == expected


@pytest.mark.parametrize(("soql", "expected"), FILTERED)
def test_filters_select_exactly_the_matching_records(soql: str, expected: set) -> None:
    assert set(ids(soql)) == expected


def test_records_carry_attributes_and_select_order_in_describe_casing() -> None:
    result = execute(parse(f"select website, NAME, owner.profile.name, OWNER.name, id "
                           f"from ACCOUNT where id = '{A1}'"), SCHEMA, Store(ROWS))
    assert result.columns == ("Website", "Name", "Owner.Profile.Name", "Owner.Name", "Id")
    [record] = list(result.records)
    assert record == {
        "attributes": {"type": "Account"},
        "Website": "acme.com",
        "Name": "Acme",
        "Owner": {"attributes": {"type": "User"}, "Profile": {
            "attributes": {"type": "Profile"}, "Name": "System Administrator"},
            "Name": "Ada Admin"},
        "Id": A1,
    }
    assert list(record) == ["attributes", "Website", "Name", "Owner", "Id"]


def test_a_missing_parent_is_null_not_an_empty_object() -> None:
    records = run(f"SELECT Name, Owner.Name, Owner.Profile.Name FROM Account "
                  f"WHERE Id IN ('{A3}', '{A5}') ORDER BY Name")
    assert [r["Owner"] for r in records] == [
        {"attributes": {"type": "User"}, "Name": "Cy Nobody", "Profile": None},
        None,
    ]


def test_count_returns_only_a_total() -> None:
    result = execute(parse("SELECT COUNT() FROM Account WHERE Industry = 'Tech'"),
                     SCHEMA, Store(ROWS))
    assert result.total_size == 2
    assert list(result.records) == []


def test_count_of_a_field_is_an_aggregate_result() -> None:
    result = execute(parse("SELECT COUNT(Id), COUNT(Website) sites FROM Account"),
                     SCHEMA, Store(ROWS))
    assert list(result.records) == [
        {"attributes": {"type": "AggregateResult"}, "expr0": 5, "sites": 3}]
    assert result.total_size == 1


def test_total_size_counts_records_after_limit_and_offset() -> None:
    assert execute(parse("SELECT Id FROM Account"), SCHEMA, Store(ROWS)).total_size == 5
    result = execute(parse("SELECT Id FROM Account ORDER BY Name LIMIT 10 OFFSET 3"),
                     SCHEMA, Store(ROWS))
    assert result.total_size == 2
    assert [r["Id"] for r in result.records] == [A4, A5]


def test_query_all_includes_deleted_records() -> None:
    assert A6 not in ids("SELECT Id FROM Account")
    assert A6 in ids("SELECT Id FROM Account", all_rows=True)
    assert ids("SELECT Id FROM Account WHERE IsDeleted = true", all_rows=True) == [A6]


def test_id_equality_fetches_by_id_instead_of_scanning() -> None:
    store = Store(ROWS)
    assert [r["Id"] for r in run(f"SELECT Id FROM Account WHERE Id = '{A2[:15]}' "
                                 "AND Name LIKE 'acme%'", store)] == [A2]
    assert store.calls == [("get", "Account", A2)]


def test_id_in_list_fetches_each_id_once() -> None:
    store = Store(ROWS)
    run(f"SELECT Id FROM Account WHERE Id IN ('{A1}', '{A1[:15]}', '{A6}')", store)
    assert store.calls == [("get", "Account", A1), ("get", "Account", A6)]


def test_semi_join_on_id_fetches_the_subquery_ids() -> None:
    store = Store(ROWS)
    assert [r["Id"] for r in run(
        "SELECT Id FROM Account WHERE Id IN (SELECT ParentId FROM Account)", store)] == [A1]
    assert store.calls == [("scan", "Account"), ("get", "Account", A1)]


def test_parent_lookups_are_fetched_once_per_parent() -> None:
    store = Store(ROWS)
    run("SELECT Owner.Name FROM Account WHERE Owner.Name != null", store)
    gets = [c for c in store.calls if c[0] == "get"]
    assert sorted(gets) == sorted({("get", "User", u) for u in (U1, U2, U3)})


class Endless:
    """A source with no end: only a lazy evaluator can answer LIMIT queries from it."""

    def __init__(self) -> None:
        self.produced = 0

    def scan(self, sobject: str) -> Iterator[Mapping[str, object]]:
        for n in itertools.count(1):
            self.produced += 1
            yield {"Id": _ids("001", n), "Name": f"n{n % 7}", "IsDeleted": False,
                   "NumberOfEmployees": n}

    def get(self, sobject: str, record_id: str) -> None:
        return None


def test_records_stream_without_reading_the_whole_source() -> None:
    source = Endless()
    result = execute(parse("SELECT Id, Name FROM Account WHERE Name = 'n3' LIMIT 4"),
                     SCHEMA, source)
    assert source.produced == 0
    first = next(result.records)
    assert first["Name"] == "n3"
    assert source.produced == 3
    assert len(list(result.records)) == 3


class Counting:
    """A finite source of n generated accounts, yielded lazily."""

    def __init__(self, n: int) -> None:
        self.n = n

    def scan(self, sobject: str) -> Iterator[Mapping[str, object]]:
        for i in range(self.n):
            yield {"Id": _ids("001", i), "Name": f"acct {(i * 7919) % self.n:06d}",
                   "IsDeleted": False, "NumberOfEmployees": (i * 31) % 97 or None}

    def get(self, sobject: str, record_id: str) -> None:
        return None


def test_order_by_with_limit_matches_a_full_sort() -> None:
    source = Counting(5000)
    full = [r["Id"] for r in execute(parse(
        "SELECT Id FROM Account ORDER BY NumberOfEmployees DESC NULLS FIRST, Name"),
        SCHEMA, source).records]
    top = [r["Id"] for r in execute(parse(
        "SELECT Id FROM Account ORDER BY NumberOfEmployees DESC NULLS FIRST, Name "
        "LIMIT 25 OFFSET 10"), SCHEMA, source).records]
    assert len(full) == 5000
    assert top == full[10:35]


# -- invalid queries: exact codes and messages --------------------------------------------
_COLUMN_HINT = ("If you are attempting to use a custom field, be sure to append the '__c' "
                "after the custom field name. Please reference your WSDL or the describe "
                "call for the appropriate names.")
INVALID = [
    ("SELECT Id, Foo FROM Account", "INVALID_FIELD",
     "\nSELECT Id, Foo FROM Account\n           ^\nERROR at Row:1:Column:12\n"
     f"No such column 'Foo' on entity 'Account'. {_COLUMN_HINT}"),
    ("SELECT Id FROM Foo", "INVALID_TYPE",
     "\nSELECT Id FROM Foo\n               ^\nERROR at Row:1:Column:16\n"
     "sObject type 'Foo' is not supported. If you are attempting to use a custom object, "
     "be sure to append the '__c' after the entity name. Please reference your WSDL or the "
     "describe call for the appropriate names."),
    ("SELECT Id FROM Account WHERE Boss.Name = 'x'", "INVALID_FIELD",
     "\nSELECT Id FROM Account WHERE Boss.Name = 'x'\n                             ^\n"
     "ERROR at Row:1:Column:30\nDidn't understand relationship 'Boss' in field path. If you "
     "are attempting to use a custom relationship, be sure to append the '__r' after the "
     "custom relationship name. Please reference your WSDL or the describe call for the "
     "appropriate names."),
    ("SELECT Owner.Nickname FROM Account", "INVALID_FIELD",
     "\nSELECT Owner.Nickname FROM Account\n       ^\nERROR at Row:1:Column:8\n"
     f"No such column 'Nickname' on entity 'User'. {_COLUMN_HINT}"),
    ("SELECT Id FROM Account WHERE NumberOfEmployees = '5'", "INVALID_FIELD",
     "\nSELECT Id FROM Account WHERE NumberOfEmployees = '5'\n"
     "                             ^\n"
     "ERROR at Row:1:Column:30\nvalue of filter criterion for field 'NumberOfEmployees' "
     "must be of type integer and should not be enclosed in quotes"),
    ("SELECT Id FROM Account WHERE Name = 5", "INVALID_FIELD",
     "\nSELECT Id FROM Account WHERE Name = 5\n                             ^\n"
     "ERROR at Row:1:Column:30\nvalue of filter criterion for field 'Name' must be of type "
     "string and should be enclosed in quotes"),
    ("SELECT Id FROM Account WHERE CreatedDate > 2024-01-01", "INVALID_FIELD",
     "\nSELECT Id FROM Account WHERE CreatedDate > 2024-01-01\n"
     "                             ^\nERROR at Row:1:Column:30\nvalue of filter criterion for "
     "field 'CreatedDate' must be of type dateTime and should not be enclosed in quotes"),
    ("SELECT Id FROM Lead WHERE IsConverted = 'false'", "INVALID_FIELD",
     "\nSELECT Id FROM Lead WHERE IsConverted = 'false'\n                          ^\n"
     "ERROR at Row:1:Column:27\nvalue of filter criterion for field 'IsConverted' must be of "
     "type boolean and should not be enclosed in quotes"),
    ("SELECT Id FROM Account WHERE Id = 'abc'", "INVALID_QUERY_FILTER_OPERATOR",
     "\nSELECT Id FROM Account WHERE Id = 'abc'\n                                  ^\n"
     "ERROR at Row:1:Column:35\ninvalid ID field: abc"),
    ("SELECT Id FROM Account WHERE Id LIKE '001%'", "INVALID_QUERY_FILTER_OPERATOR",
     "\nSELECT Id FROM Account WHERE Id LIKE '001%'\n                             ^\n"
     "ERROR at Row:1:Column:30\ninvalid operator on id field"),
    ("SELECT Id FROM Account WHERE Tags__c LIKE 'g%'", "INVALID_QUERY_FILTER_OPERATOR",
     "\nSELECT Id FROM Account WHERE Tags__c LIKE 'g%'\n                             ^\n"
     "ERROR at Row:1:Column:30\ninvalid operator on multipicklist field"),
    ("SELECT Id FROM Account WHERE Description = 'x'", "INVALID_FIELD",
     "\nSELECT Id FROM Account WHERE Description = 'x'\n                             ^\n"
     "ERROR at Row:1:Column:30\nfield 'Description' can not be filtered in a query call"),
    ("SELECT Id FROM Account ORDER BY Description", "INVALID_FIELD",
     "\nSELECT Id FROM Account ORDER BY Description\n                                ^\n"
     "ERROR at Row:1:Column:33\nfield 'Description' can not be sorted in a query call"),
    ("SELECT Id, Name, id FROM Account", "INVALID_FIELD",
     "\nSELECT Id, Name, id FROM Account\n                 ^\nERROR at Row:1:Column:18\n"
     "duplicate field selected: Id"),
    ("SELECT Name, COUNT(Id) FROM Account", "MALFORMED_QUERY",
     "\nSELECT Name, COUNT(Id) FROM Account\n       ^\nERROR at Row:1:Column:8\n"
     "Field must be grouped or aggregated: Name"),
    ("SELECT Id FROM Account WHERE Id IN (SELECT Bogus FROM User)", "INVALID_FIELD",
     "\nFROM Account WHERE Id IN (SELECT Bogus FROM User)\n"
     "                                 ^\nERROR at Row:1:Column:44\n"
     f"No such column 'Bogus' on entity 'User'. {_COLUMN_HINT}"),
]


@pytest.mark.parametrize(("soql", "code", "message"), INVALID)
def test_invalid_queries_fail_with_salesforce_codes_and_wording(
    soql: str, code: str, message: str
) -> None:
    with pytest.raises(SoqlError) as caught:
        execute(parse(soql), SCHEMA, Store(ROWS))
    assert (caught.value.error_code, caught.value.message) == (code, message)


def test_errors_are_raised_before_any_record_is_read() -> None:
    source = Endless()
    with pytest.raises(SoqlError):
        execute(parse("SELECT Id FROM Account WHERE Name = 1"), SCHEMA, source)
    assert source.produced == 0
