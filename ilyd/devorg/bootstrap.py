"""Creating an org from nothing: identity, its setup records and sample data."""

from __future__ import annotations

import datetime as dt
import secrets
import string

from ilyd.devorg.ids import KEY_PREFIXES, make_id
from ilyd.devorg.org import OrgIdentity, OrgSettings, OrgState, Record
from ilyd.devorg.schema import OBJECT_PERMISSIONS, STANDARD_OBJECTS, SYSTEM_PERMISSIONS
from ilyd.devorg.values import now

_POD_CHARS = string.digits + string.ascii_uppercase
_INDUSTRIES = ("Technology", "Finance", "Retail", "Healthcare", "Energy", "Media")


def new_identity(index: int, sandbox: bool) -> OrgIdentity:
    """A fresh org identity: ids, integration user credentials, connected app keys."""
    pod = _POD_CHARS[(index // 36) % 36] + _POD_CHARS[index % 36]
    name = f"sandbox{index}" if sandbox else f"org{index}"
    username = f"integration@ilyd-{name}.example.com" + (f".sbx{index}" if sandbox else "")
    ident = lambda prefix, n: make_id(KEY_PREFIXES[prefix], pod, n)  # noqa: E731
    return OrgIdentity(
        name=name, org_id=ident("Organization", 1), is_sandbox=sandbox, pod=pod,
        user_id=ident("User", 2), username=username,
        password=secrets.token_urlsafe(12),
        client_id="3MVG9" + secrets.token_urlsafe(60).replace("-", "A").replace("_", "b")[:80],
        client_secret=secrets.token_hex(32).upper(),
        profile_id=ident("Profile", 3), profile_ps_id=ident("PermissionSet", 4),
        other_user_id=ident("User", 5),
    )


def blank(sobject: str) -> Record:
    """A record with every field at its default."""
    return {f.name: f.default for f in STANDARD_OBJECTS[sobject].fields}


def _put(org: OrgState, sobject: str, rec: Record, stamp: dt.datetime, user: str) -> None:
    full = blank(sobject)
    full.update(rec)
    full.update(IsDeleted=False, CreatedDate=stamp, CreatedById=user, LastModifiedDate=stamp,
                LastModifiedById=user, SystemModstamp=stamp)
    org.tables[sobject].live[str(full["Id"])] = full


def setup_records(org: OrgState) -> None:
    """Organization, profiles (with their owned permission sets), users, assignments."""
    i = org.identity
    stamp = now()
    user = i.user_id
    new = org.ids.new
    _put(org, "Organization", {
        "Id": i.org_id, "Name": f"ilyd {i.name}", "IsSandbox": i.is_sandbox,
        "OrganizationType": "Developer Edition" if not i.is_sandbox else "Enterprise Edition",
        "InstanceName": "DEV" + i.pod, "LanguageLocaleKey": "en_US",
        "TimeZoneSidKey": "America/Los_Angeles", "DefaultLocaleSidKey": "en_US"}, stamp, user)
    std_profile = new(KEY_PREFIXES["Profile"])
    std_ps = new(KEY_PREFIXES["PermissionSet"])
    admin_perms = dict.fromkeys(SYSTEM_PERMISSIONS, True)
    std_perms = {p: p in ("PermissionsApiEnabled", "PermissionsStreamingApiEnabled")
                 for p in SYSTEM_PERMISSIONS}
    for pid, psid, pname, perms in (
        (i.profile_id, i.profile_ps_id, "System Administrator", admin_perms),
        (std_profile, std_ps, "Standard User", std_perms),
    ):
        _put(org, "Profile", {"Id": pid, "Name": pname, "UserType": "Standard", **perms},
             stamp, user)
        _put(org, "PermissionSet", {
            "Id": psid, "Name": "X00e" + pid[3:15], "Label": pname, "IsOwnedByProfile": True,
            "IsCustom": False, "ProfileId": pid, "Type": "Profile", **perms}, stamp, user)
        for sobject in ("Account", "Lead", "PushTopic"):
            _put(org, "ObjectPermissions", {
                "Id": new(KEY_PREFIXES["ObjectPermissions"]), "ParentId": psid,
                "SobjectType": sobject, **dict.fromkeys(OBJECT_PERMISSIONS, True),
                "PermissionsViewAllFields": False}, stamp, user)
    for uid, uname, first, last, pid, psid in (
        (i.user_id, i.username, "Ilyd", "Integration", i.profile_id, i.profile_ps_id),
        (i.other_user_id, i.username.replace("integration@", "sales@"), "Sam", "Seller",
         std_profile, std_ps),
    ):
        _put(org, "User", {
            "Id": uid, "Username": uname, "FirstName": first, "LastName": last,
            "Name": f"{first} {last}", "Email": uname.split(".sbx")[0], "Alias": first[:8],
            "ProfileId": pid, "IsActive": True, "UserType": "Standard",
            "TimeZoneSidKey": "America/Los_Angeles", "LanguageLocaleKey": "en_US",
            "LocaleSidKey": "en_US"}, stamp, user)
        _put(org, "PermissionSetAssignment", {
            "Id": new(KEY_PREFIXES["PermissionSetAssignment"]), "AssigneeId": uid,
            "PermissionSetId": psid, "IsActive": True}, stamp, user)
    org.permissions_changed()


def seed(org: OrgState, sobject: str, count: int) -> None:
    """Add `count` sample Accounts or Leads (owned by the second user), in bulk.

    Records share one timestamp object: a million seeded records then cost only their
    own strings, which keeps `bench/devorg_memory.py` honest about per-record cost.
    """
    stamp = now()
    owner = org.identity.other_user_id
    prefix = KEY_PREFIXES[sobject]
    template = blank(sobject)
    template.update(IsDeleted=False, CreatedDate=stamp, CreatedById=owner,
                    LastModifiedDate=stamp, LastModifiedById=owner, SystemModstamp=stamp,
                    OwnerId=owner)
    live = org.tables[sobject].live
    with org.lock:
        for n in range(count):
            rid = org.ids.new(prefix)
            rec = dict(template)
            rec["Id"] = rid
            company = f"Company {n}"
            domain = f"company{n}.example.com"
            if sobject == "Account":
                rec.update(Name=company, Website=f"https://www.{domain}",
                           Industry=_INDUSTRIES[n % len(_INDUSTRIES)],
                           NumberOfEmployees=(n % 5000) + 1, BillingCountry="US")
            else:
                rec.update(FirstName="Lee", LastName=f"Lead {n}", Name=f"Lee Lead {n}",
                           Company=company, Email=f"lee{n}@{domain}",
                           Status="Open - Not Contacted", IsConverted=False)
            live[rid] = rec
            if org.persistence is not None:
                org.persistence([(sobject, rid, rec, False)])


def default_settings(token_ttl: float) -> OrgSettings:
    """Settings of a new org."""
    return OrgSettings(token_ttl=token_ttl)
