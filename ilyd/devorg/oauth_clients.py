"""What the token endpoint, the authorize page and the JWT bearer grant share: Salesforce's
OAuth error pair and the org behind a connected app's consumer key."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from ilyd.devorg.org import OrgState
from ilyd.devorg.web import Response, json_response

__all__ = ["OAuthError", "org_for_client"]


class OAuthError(Exception):
    """A token-endpoint failure with Salesforce's error / error_description pair."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status

    def response(self) -> Response:
        """The JSON error body Salesforce sends."""
        return json_response({"error": self.error, "error_description": self.description},
                             self.status)


def org_for_client(orgs: Iterable[OrgState], client_id: str | None) -> OrgState:
    """The org whose connected app has this consumer key."""
    for state in orgs:
        if client_id and hmac.compare_digest(state.identity.client_id, client_id):
            return state
    raise OAuthError("invalid_client_id", "client identifier invalid")
