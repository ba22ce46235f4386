"""ilyd's own writes to Ily fields raise no PushTopic event; a change to an input field does.

Plain Bayeux over HTTP against devorg's CometD endpoint, as the integration user."""

from __future__ import annotations

import time
from typing import Any

import requests

from .conftest import Env


class _Bayeux:
    def __init__(self, env: Env) -> None:
        token = env.rest.token
        self.url = f"{token.instance_url}/cometd/62.0"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token.access_token}"
        self.client_id: str | None = None

    def post(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        if self.client_id:
            message["clientId"] = self.client_id
        response = self.http.post(self.url, json=[message], timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def start(self, channel: str) -> None:
        reply = self.post({"channel": "/meta/handshake", "version": "1.0",
                           "supportedConnectionTypes": ["long-polling"],
                           "ext": {"replay": True}})[0]
        assert reply["successful"], reply
        self.client_id = reply["clientId"]
        reply = self.post({"channel": "/meta/subscribe", "subscription": channel,
                           "ext": {"replay": {channel: -2}}})[0]
        assert reply["successful"], reply

    def events(self, want: int, deadline: float = 10.0) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        end = time.monotonic() + deadline
        while len(found) < want and time.monotonic() < end:
            for message in self.post({"channel": "/meta/connect",
                                      "connectionType": "long-polling",
                                      "advice": {"timeout": 0}}):
                if not message["channel"].startswith("/meta/"):
                    found.append(message)
        return found


def test_an_ily_field_update_raises_no_event_while_a_website_update_does(env: Env) -> None:
    env.provisioner().provision()
    account = env.rest.create("Account", {"Name": "Acme"})
    env.rest.update("Account", account, {"Ily_Industry__c": "Retail",
                                         "Ily_Domain__c": "acme.example"})
    env.rest.update("Account", account, {"Website": "https://acme.example"})
    bayeux = _Bayeux(env)
    bayeux.start("/topic/IlyAccountChanges")
    # An event from the Ily write would come second and fail the comparison below.
    events = bayeux.events(want=2)
    kinds = [(e["data"]["event"]["type"], e["data"]["sobject"].get("Website")) for e in events]
    # created, then only the Website update: the Ily write in between raised nothing.
    assert kinds == [("created", None), ("updated", "https://acme.example")]
