"""The check line for fields the writer marked unwritable."""

from __future__ import annotations

from ilyd.provision.checks import Status
from ilyd.provision.unwritable import STEP, unwritable_check
from ilyd.store.writes import UnwritableField

REASON = ("INVALID_FIELD_FOR_INSERT_UPDATE: Unable to create/update fields: Ily_Industry__c."
          " Please check the security settings of this field")


def test_no_refused_field_gives_no_line() -> None:
    assert unwritable_check("acme", []) is None


def test_refused_fields_give_one_warn_line_naming_each_with_the_provision_fix() -> None:
    result = unwritable_check("acme", [
        UnwritableField("Lead", "Ily_Industry__c", REASON, 1_795_000_000.0),
        UnwritableField("Account", "Ily_Domain__c", "INVALID_FIELD: No such column", 0.0),
    ])
    assert result is not None
    assert result.step == STEP
    assert result.status is Status.WARN
    assert result.summary == (
        "Salesforce refused 2 Ily field(s): Account.Ily_Domain__c (INVALID_FIELD since"
        " 1970-01-01 00:00 UTC), Lead.Ily_Industry__c (INVALID_FIELD_FOR_INSERT_UPDATE since"
        " 2026-11-18 11:06 UTC)")
    assert result.fix is not None
    assert result.fix.startswith("grant Edit on them through the Ily_Connector permission"
                                 " set: ilyd ctl provision acme")
