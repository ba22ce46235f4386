"""LoginHistory: one row per login attempt, written by devorg itself, never by the API.

OAuth logins (the authorize page and every token grant) are "Remote Access 2.0" rows
named after the connected app, as Salesforce records a connected-app login; a person
using the account in a browser ("Application", a UI login) has no page in devorg, so the
admin API adds such rows (`POST /_devorg/orgs/{org}/logins`).
"""

from __future__ import annotations

import datetime as dt

from ilyd.devorg.ids import KEY_PREFIXES
from ilyd.devorg.org import OrgState, Record
from ilyd.devorg.schema import LOGIN_TYPES, STANDARD_OBJECTS
from ilyd.devorg.values import now

OAUTH = "Remote Access 2.0"
UI = "Application"
CONNECTED_APP = "ilyd"  # the connected app's name: the Application column of OAuth logins
SUCCESS = "Success"


def record_login(org: OrgState, user_id: str, *, login_type: str = OAUTH,
                 application: str = CONNECTED_APP, status: str = SUCCESS,
                 source_ip: str | None = None, login_url: str | None = None,
                 login_time: dt.datetime | None = None, api_type: str | None = None,
                 browser: str | None = None) -> Record:
    """Append one LoginHistory row (raises ValueError for a LoginType Salesforce lacks)."""
    if login_type not in LOGIN_TYPES:
        raise ValueError(f"unknown LoginType {login_type!r}; one of {', '.join(LOGIN_TYPES)}")
    rec: Record = {f.name: None for f in STANDARD_OBJECTS["LoginHistory"].fields}
    rec.update(Id=org.ids.new(KEY_PREFIXES["LoginHistory"]), UserId=user_id,
               LoginTime=login_time or now(), LoginType=login_type, Status=status,
               Application=application, SourceIp=source_ip, LoginUrl=login_url,
               ApiType=api_type, Browser=browser,
               Platform="Unknown" if login_type == OAUTH else None)
    with org.lock:
        org.tables["LoginHistory"].live[str(rec["Id"])] = rec
        if org.persistence is not None:
            org.persistence([("LoginHistory", str(rec["Id"]), rec, False)])
    return rec


def visible(org: OrgState, user_id: str, rows: list[Record]) -> list[Record]:
    """The rows a user may read: all with Manage Users, else only their own (API 37.0+)."""
    if org.access(user_id).has("PermissionsManageUsers"):
        return rows
    return [r for r in rows if r.get("UserId") == user_id]
