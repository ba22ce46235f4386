"""The per-field state the overwrite policies read: one statement's answer agrees with
the three tables read one by one, and digests keep values of different types apart."""

from __future__ import annotations

from ilyd.store import Database
from ilyd.store.field_state import FieldStateStore, _digest, digest


def test_the_policy_state_of_records_is_what_each_table_holds_for_them(db: Database) -> None:
    store = FieldStateStore(db)
    store.remember("o", "Lead", [("00Q1", '{"A__c":"aa"}'), ("00Q2", '{"B__c":"bb"}')])
    store.remember("other", "Lead", [("00Q3", '{"A__c":"zz"}')])
    store.send_pending("o", [("Lead", "00Q2", '{"A__c":"pp"}'),
                             ("Account", "00Q1", '{"A__c":"xx"}')])
    store.protect("o", "Lead", [("00Q1", "A__c"), ("00Q1", "B__c"), ("00Q3", "A__c")])
    ids = ["00Q1", "00Q2", "00Q3", "00Q9"]
    written, pending, protected = store.policy_state("o", "Lead", ids)
    assert written == store.written("o", "Lead", ids) == {
        "00Q1": {"A__c": "aa"}, "00Q2": {"B__c": "bb"}}
    assert pending == store.pending("o", "Lead", ids) == {"00Q2": {"A__c": "pp"}}
    assert protected == store.protected("o", "Lead", ids) == {
        "00Q1": {"A__c", "B__c"}, "00Q3": {"A__c"}}


def test_the_policy_state_of_more_records_than_one_statement_takes_is_complete(
        db: Database) -> None:
    store = FieldStateStore(db)
    ids = [f"00Q{n:05d}" for n in range(1000)]
    store.remember("o", "Lead", [(i, '{"A__c":"aa"}') for i in ids])
    store.protect("o", "Lead", [(i, "A__c") for i in ids[::7]])
    written, pending, protected = store.policy_state("o", "Lead", ids)
    assert len(written) == 1000
    assert pending == {}
    assert set(protected) == set(ids[::7])


def test_a_kept_digest_is_the_digest_of_the_value_and_types_stay_apart() -> None:
    for value in ("12000", 12000, 12000.0, True, 1, "true", None, "", "Acme"):
        assert digest("Ily_Company_Name__c", value) == _digest("Ily_Company_Name__c", value)
        assert digest("Ily_Employee_Count__c", value) == _digest("Ily_Employee_Count__c", value)
    assert digest("Ily_Company_Name__c", ["a"]) == _digest("Ily_Company_Name__c", ["a"])
    long_text = "aws, " * 400
    assert digest("Ily_Technologies__c", long_text) == _digest("Ily_Technologies__c",
                                                               long_text)
