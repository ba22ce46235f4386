"""LoginHistory: recorded by devorg on every OAuth login, readable, never writable."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests

from ilyd.devorg import DevOrg

from .conftest import Client, login

_ALL = ("SELECT Id, UserId, LoginTime, LoginType, Status, Application, SourceIp"
        " FROM LoginHistory ORDER BY LoginTime")


def _logins(client: Client) -> list[dict]:
    return client.query(_ALL)["records"]


def test_a_token_grant_is_a_remote_access_login_of_the_connected_app(client: Client) -> None:
    rows = _logins(client)
    assert rows, "the password grant of the fixture left no LoginHistory row"
    row = rows[-1]
    assert row["Id"].startswith("0Ya")
    assert row["UserId"] == client.org.user_id
    assert (row["LoginType"], row["Status"], row["Application"]) == (
        "Remote Access 2.0", "Success", "ilyd")
    assert row["SourceIp"] == "127.0.0.1"


def test_the_authorize_page_login_is_recorded_once_as_an_oauth_login(dev: DevOrg) -> None:
    org = dev.orgs[0]
    form = {"response_type": "code", "client_id": org.client_id,
            "redirect_uri": "http://127.0.0.1:1/cb", "username": org.username,
            "client_secret": org.client_secret}
    url = dev.url + "/services/oauth2/authorize"
    wrong = requests.post(url, data={**form, "password": "nope", "action": "allow"},
                          allow_redirects=False)
    assert wrong.status_code == 200
    allowed = requests.post(url, data={**form, "password": org.password, "action": "allow"},
                            allow_redirects=False)
    code = parse_qs(urlsplit(allowed.headers["Location"]).query)["code"][0]
    token = requests.post(dev.url + "/services/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "client_id": org.client_id,
        "client_secret": org.client_secret, "redirect_uri": form["redirect_uri"]})
    assert token.status_code == 200, token.text
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    rows = http.get(dev.url + "/services/data/v59.0/query", params={
        "q": _ALL}).json()["records"]
    assert [(r["LoginType"], r["Status"]) for r in rows] == [
        ("Remote Access 2.0", "Invalid Password"), ("Remote Access 2.0", "Success")]
    assert not any(r["LoginType"] == "Application" for r in rows)


def test_login_history_cannot_be_created_or_changed_through_the_api(client: Client) -> None:
    created = client.post("/sobjects/LoginHistory", json={"LoginType": "Application"})
    assert created.status_code == 400
    error = created.json()[0]
    assert (error["errorCode"], error["message"]) == (
        "INVALID_TYPE_FOR_OPERATION", "entity type LoginHistory does not support insert")
    row_id = _logins(client)[-1]["Id"]
    changed = client.patch(f"/sobjects/LoginHistory/{row_id}", json={"Status": "x"})
    assert changed.status_code == 400
    assert changed.json()[0]["errorCode"] == "INVALID_TYPE_FOR_OPERATION"
    describe = client.get("/sobjects/LoginHistory/describe").json()
    assert (describe["createable"], describe["queryable"], describe["keyPrefix"]) == (
        False, True, "0Ya")


def test_the_admin_api_adds_a_browser_login_and_users_see_only_their_own(
        client: Client) -> None:
    added = client.admin("POST", "/orgs/org0/logins", json={"days_ago": 2})
    assert added.status_code == 201, added.text
    assert (added.json()["LoginType"], added.json()["Application"]) == ("Application",
                                                                         "Browser")
    other = client.admin("POST", "/orgs/org0/logins", json={"user_id": "other"})
    assert other.status_code == 201
    bad = client.admin("POST", "/orgs/org0/logins", json={"login_type": "Telepathy"})
    assert bad.status_code == 400
    assert "Remote Access 2.0" in bad.json()["error"]
    # The integration user manages users: it sees both; without Manage Users, only its own.
    assert {r["UserId"] for r in _logins(client)} == {client.org.user_id,
                                                       other.json()["UserId"]}
    client.admin("PATCH", "/orgs/org0/permissions",
                 json={"system": {"PermissionsManageUsers": False}})
    assert {r["UserId"] for r in _logins(client)} == {client.org.user_id}
    recent = client.query("SELECT Id FROM LoginHistory WHERE LoginType = 'Application'"
                          " AND LoginTime = LAST_N_DAYS:30")
    assert recent["totalSize"] == 1
    listed = client.admin("GET", "/orgs/org0/logins").json()
    assert len(listed) == len(_logins(client)) + 1
    assert login(client.dev, client.org)  # a fresh login adds one more row
    assert len(client.admin("GET", "/orgs/org0/logins").json()) == len(listed) + 1
