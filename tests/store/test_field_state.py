"""The per-field state the overwrite policies read: one statement's answer agrees with
the tables read one by one (for one object, and with the hashes for several), digests
keep values of different types apart, and a digests object is the JSON of the digests."""

from __future__ import annotations

import json

from ilyd.store import Database
from ilyd.store.field_state import FieldStateStore, _digest, digest, digests_json
from ilyd.store.record_hashes import RecordHashStore


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


def test_the_records_state_of_several_objects_is_each_objects_hashes_and_policy_state(
        db: Database) -> None:
    store, hashes = FieldStateStore(db), RecordHashStore(db)
    hashes.put_many("o", "Lead", {"00Q1": "h1", "00Q2": "h2"}, "realtime", 10.0)
    hashes.put_many("o", "Account", {"0011": "a1"}, "resync", 20.0)
    hashes.put_many("other", "Lead", {"00Q1": "x"}, "realtime", 30.0)
    store.remember("o", "Lead", [("00Q1", '{"A__c":"aa"}')])
    store.remember("o", "Account", [("0011", '{"B__c":"bb"}'), ("00Q2", '{"C__c":"cc"}')])
    store.send_pending("o", [("Account", "0011", '{"B__c":"pp"}')])
    store.protect("o", "Lead", [("00Q2", "A__c"), ("00Q2", "B__c")])
    store.protect("o", "Account", [("00Q1", "A__c")])
    state = store.records_state("o", [("Lead", "00Q1"), ("Lead", "00Q2"), ("Lead", "00Q9"),
                                      ("Account", "0011"), ("Contact", "0031")])
    assert set(state) == {"Lead", "Account", "Contact"}
    for sobject, ids in (("Lead", ["00Q1", "00Q2", "00Q9"]), ("Account", ["0011"]),
                         ("Contact", ["0031"])):
        # An id asked under one object only: another object's rows for it stay out.
        assert state[sobject].hashes == hashes.get_many("o", sobject, ids)
        assert (state[sobject].written, state[sobject].pending, state[sobject].protected) \
            == store.policy_state("o", sobject, ids)
    assert state["Lead"].protected == {"00Q2": {"A__c", "B__c"}}
    assert state["Account"].pending == {"0011": {"B__c": "pp"}}


def test_the_records_state_of_more_records_than_one_statement_takes_is_complete(
        db: Database) -> None:
    store, hashes = FieldStateStore(db), RecordHashStore(db)
    ids = [f"00Q{n:05d}" for n in range(1000)]
    hashes.put_many("o", "Lead", {i: "h" for i in ids}, "realtime")
    store.protect("o", "Lead", [(i, "A__c") for i in ids[::7]])
    state = store.records_state("o", [("Lead", i) for i in ids])["Lead"]
    assert len(state.hashes) == 1000
    assert set(state.protected) == set(ids[::7])


def test_a_kept_digest_is_the_digest_of_the_value_and_types_stay_apart() -> None:
    for value in ("12000", 12000, 12000.0, True, 1, "true", None, "", "Acme"):
        assert digest("Ily_Company_Name__c", value) == _digest("Ily_Company_Name__c", value)
        assert digest("Ily_Employee_Count__c", value) == _digest("Ily_Employee_Count__c", value)
    assert digest("Ily_Company_Name__c", ["a"]) == _digest("Ily_Company_Name__c", ["a"])
    long_text = "aws, " * 400
    assert digest("Ily_Technologies__c", long_text) == _digest("Ily_Technologies__c",
                                                               long_text)
    values = {"Ily_Technologies__c": long_text, "Ily_Employee_Count__c": 12000,
              "Ily_Company_Name__c": None, "Ily_Domain__c": "", 'Odd "name" é': True}
    assert digests_json(values, skip=["Ily_Domain__c"]) == json.dumps(
        {k: digest(k, v) for k, v in sorted(values.items()) if k != "Ily_Domain__c"},
        separators=(",", ":"))
