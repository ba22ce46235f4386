"""Helpers for the CometD tests: a logged-in org over HTTP, a raw Bayeux session, and the
`dev` and `org` fixtures each test module builds from them."""

from __future__ import annotations

import json
import threading
from typing import IO, Any

import pytest
import requests

from ilyd.devorg import DevOrg
from tests.helpers.devorg_process import devorg_fixture

API = "62.0"


class OrgClient:
    """REST and admin access to one devorg org, with a password-grant token."""

    def __init__(self, dev: DevOrg, index: int = 0) -> None:
        self.dev = dev
        self.info = dev.orgs[index]
        self.http = requests.Session()
        self.token = self.login()

    def login(self) -> str:
        response = self.http.post(f"{self.dev.url}/services/oauth2/token", data={
            "grant_type": "password", "client_id": self.info.client_id,
            "client_secret": self.info.client_secret, "username": self.info.username,
            "password": self.info.password,
        }, timeout=10)
        response.raise_for_status()
        return str(response.json()["access_token"])

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def create(self, sobject: str, fields: dict[str, Any]) -> str:
        response = self.http.post(
            f"{self.dev.url}/services/data/v{API}/sobjects/{sobject}", json=fields,
            headers=self.auth, timeout=10,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def update(self, sobject: str, record_id: str, fields: dict[str, Any]) -> None:
        response = self.http.patch(
            f"{self.dev.url}/services/data/v{API}/sobjects/{sobject}/{record_id}", json=fields,
            headers=self.auth, timeout=10,
        )
        assert response.status_code == 204, response.text

    def delete(self, sobject: str, record_id: str) -> None:
        response = self.http.delete(
            f"{self.dev.url}/services/data/v{API}/sobjects/{sobject}/{record_id}",
            headers=self.auth, timeout=10,
        )
        assert response.status_code == 204, response.text

    def push_topic(self, name: str, query: str, notify: str = "Referenced", **extra: Any) -> str:
        return self.create("PushTopic", {"Name": name, "Query": query, "ApiVersion": 62.0,
                                         "NotifyForFields": notify, **extra})

    def streaming(self, action: str = "", body: dict[str, Any] | None = None,
                  method: str = "POST") -> Any:
        url = f"{self.dev.admin}/streaming/{self.info.name}" + (f"/{action}" if action else "")
        if not action:
            response = self.http.get(url, timeout=10)
        else:
            response = self.http.request(method, url, json=body or {}, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def select_cdc(self, *entities: str) -> list[str]:
        """Select objects for Change Data Capture (Tooling PlatformEventChannelMember on
        the standard ChangeEvents channel); returns the members' ids."""
        ids = []
        for entity in entities:
            response = self.http.post(
                f"{self.dev.url}/services/data/v{API}/tooling/sobjects/"
                "PlatformEventChannelMember", headers=self.auth, timeout=10,
                json={"FullName": f"ChangeEvents_{entity}ChangeEvent",
                      "Metadata": {"eventChannel": "ChangeEvents",
                                   "selectedEntity": f"{entity}ChangeEvent"}})
            assert response.status_code == 201, response.text
            ids.append(str(response.json()["id"]))
        return ids

    def lead(self, n: int, **fields: Any) -> str:
        return self.create("Lead", {"LastName": f"L{n}", "Company": f"C{n}",
                                    "Email": f"l{n}@example.com", **fields})


class RawBayeux:
    """A hand-driven Bayeux session (for exact protocol assertions)."""

    def __init__(self, dev: DevOrg, token: str) -> None:
        self.url = f"{dev.url}/cometd/{API}"
        self.http = requests.Session()
        self.token = token
        self.client_id: str | None = None
        self.ids = 0

    def post(self, *messages: dict[str, Any], **kwargs: Any) -> requests.Response:
        for message in messages:
            self.ids += 1
            message.setdefault("id", str(self.ids))
        return self.http.post(self.url, json=list(messages), timeout=30,
                              headers={"Authorization": f"Bearer {self.token}"}, **kwargs)

    def handshake(self) -> dict[str, Any]:
        reply = self.post({"channel": "/meta/handshake", "version": "1.0",
                           "supportedConnectionTypes": ["long-polling"],
                           "ext": {"replay": True}}).json()[0]
        self.client_id = reply.get("clientId")
        return reply

    def subscribe(self, channel: str, replay: int | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"channel": "/meta/subscribe", "clientId": self.client_id,
                                   "subscription": channel}
        if replay is not None:
            message["ext"] = {"replay": {channel.split("?", maxsplit=1)[0]: replay}}
        return self.post(message).json()[0]

    def connect(self) -> list[dict[str, Any]]:
        return self.post({"channel": "/meta/connect", "clientId": self.client_id,
                          "connectionType": "long-polling"}).json()


def streaming_fixtures(hold_seconds: int, topics: dict[str, str] | None = None,
                       scope: str = "function") -> tuple[Any, Any]:
    """The `dev` and `org` fixtures of a CometD test module, to assign as
    `dev, org = streaming_fixtures(...)`: a devorg on a free port, and an `OrgClient` for
    its first org whose held connects return after `hold_seconds`, with a PushTopic per
    `topics` entry (name: query)."""

    @pytest.fixture(scope=scope)
    def org(dev: DevOrg) -> OrgClient:
        client = OrgClient(dev)
        client.streaming("settings", {"hold_seconds": hold_seconds})
        for name, query in (topics or {}).items():
            client.push_topic(name, query)
        return client

    return devorg_fixture(scope), org


class Lines:
    """A child's JSON lines, read on a thread so the test can wait with a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self.items: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._cond:
                self.items.append(json.loads(line))
                self._cond.notify_all()

    def wait(self, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.items) >= n, timeout)
            assert len(self.items) >= n, f"expected {n} lines, got {self.items}"
            return list(self.items)
