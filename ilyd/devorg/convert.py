"""Lead conversion, as Salesforce's convertLead does it (the admin API's
`POST /_devorg/orgs/{org}/leads/{id}/convert`).

Converting turns a Lead into an Account (created from the lead's company, address and
firmographics, or an existing one named by the caller) and marks the lead converted:
`IsConverted`, `ConvertedDate`, `ConvertedAccountId` and a converted `Status`. devorg has
no Contact or Opportunity objects, so `ConvertedContactId` / `ConvertedOpportunityId` are
not set. From then on Salesforce keeps the lead read-only: any update answers
`CANNOT_UPDATE_CONVERTED_LEAD` ("cannot reference converted lead"), which `dml` enforces.

Both writes are committed together, under the org's lock, through the same path as every
other write (history, change feed, persistence), so a subscriber sees the Account created
and the Lead updated.
"""

from __future__ import annotations

from dataclasses import dataclass

from ilyd.devorg.dml import RecordError, WriteOp, _commit, collections_paused
from ilyd.devorg.dml_prepare import Writer, _Prepared
from ilyd.devorg.ids import to18
from ilyd.devorg.org import OrgState, Record
from ilyd.devorg.values import now

__all__ = ["CONVERTED_STATUS", "Conversion", "convert_lead"]

# The standard picklist's only converted value (Lead Status values flagged "Converted").
CONVERTED_STATUS = "Closed - Converted"

# Standard lead → account field mapping (Salesforce's default Lead Field Mapping for the
# fields devorg's Account has). Custom fields are only mapped when an admin maps them.
_ACCOUNT_FIELDS: tuple[tuple[str, str], ...] = (
    ("Company", "Name"), ("Website", "Website"), ("Phone", "Phone"),
    ("Industry", "Industry"), ("AnnualRevenue", "AnnualRevenue"),
    ("NumberOfEmployees", "NumberOfEmployees"), ("Street", "BillingStreet"),
    ("City", "BillingCity"), ("State", "BillingState"), ("PostalCode", "BillingPostalCode"),
    ("Country", "BillingCountry"),
)


@dataclass(frozen=True)
class Conversion:
    """A LeadConvertResult: the lead and the records it became."""

    lead_id: str
    account_id: str
    account_created: bool

    def as_dict(self) -> dict[str, object]:
        """The admin API's answer (Salesforce's LeadConvertResult names)."""
        return {"success": True, "leadId": self.lead_id, "accountId": self.account_id,
                "accountCreated": self.account_created, "contactId": None,
                "opportunityId": None, "errors": []}


def convert_lead(org: OrgState, user_id: str, lead_id: str, *, account_id: str | None = None,
                 converted_status: str = CONVERTED_STATUS) -> Conversion:
    """Convert one lead as `user_id`; raises LookupError for an unknown id and RecordError
    (Salesforce's code and wording) when the lead cannot be converted."""
    rid = to18(lead_id)
    writer = Writer(org, user_id)
    with org.lock, collections_paused():
        located = org.find(rid) if rid else None
        if located is None:
            raise LookupError(f"no record {lead_id}")
        sobject, lead, deleted = located
        if sobject != "Lead":
            raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        if deleted:
            raise RecordError("ENTITY_IS_DELETED", "entity is deleted")
        if lead.get("IsConverted"):
            raise RecordError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
        if converted_status != CONVERTED_STATUS:
            raise RecordError("INVALID_STATUS", f"invalid convertedStatus: {converted_status}")
        lead_def = org.object_def("Lead")
        if lead_def is None or not writer.access.can(lead_def, "Edit"):
            raise RecordError("INSUFFICIENT_ACCESS_OR_READONLY",
                              "insufficient access rights on object id")
        stamp = now()
        prepared: list[_Prepared] = []
        if account_id:
            account = to18(account_id)
            if account is None or org.get("Account", account) is None:
                raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id",
                                  ["accountId"])
        else:
            values = {target: lead[source] for source, target in _ACCOUNT_FIELDS
                      if lead.get(source) not in (None, "")}
            values["OwnerId"] = lead.get("OwnerId") or user_id
            created = writer.prepare(WriteOp("create", "Account", values=values), stamp)
            prepared.append(created)
            account = created.record_id
        new: Record = dict(lead, IsConverted=True, ConvertedDate=stamp.date(),
                           ConvertedAccountId=account, Status=converted_status,
                           LastModifiedDate=stamp, LastModifiedById=user_id,
                           SystemModstamp=stamp)
        changed = frozenset(k for k, v in new.items() if lead.get(k) != v)
        prepared.append(_Prepared("Lead", str(lead["Id"]), new, lead, "updated", changed))
        # dml's commit, not save(): IsConverted and friends are not updateable through
        # the API — only the conversion itself sets them.
        _commit(org, user_id, prepared, stamp)
    return Conversion(str(lead["Id"]), account, account_created=not account_id)
