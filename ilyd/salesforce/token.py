"""An access token, and what a client needs of whoever issues them (`AccessTokens`).

A leaf: `ilyd.salesforce.http` sends requests with a token without knowing how it is
obtained (`ilyd.salesforce.auth` has the OAuth flows), and auth sends its token requests
through http.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["AccessTokens", "Token"]


@dataclass(frozen=True)
class Token:
    """An access token and where to use it. The token itself never appears in repr."""

    access_token: str = field(repr=False)
    instance_url: str
    issued_at: float
    id_url: str | None = None
    scope: str | None = None

    @property
    def org_id(self) -> str | None:
        """18-char org id from the identity URL (`…/id/<orgId>/<userId>`)."""
        parts = (self.id_url or "").rstrip("/").split("/")
        return parts[-2] if len(parts) >= 2 and self.id_url else None

    @property
    def user_id(self) -> str | None:
        """18-char id of the user the token acts as."""
        return (self.id_url or "").rstrip("/").rsplit("/", 1)[-1] or None


class AccessTokens(Protocol):
    """Where a client gets its token, and a new one when Salesforce refused the old."""

    def token(self) -> Token:
        """The current token (obtained on first use)."""
        ...

    def refresh(self, stale: Token | None = None) -> Token:
        """A new token, unless another caller already replaced `stale`."""
        ...
