"""Tokens: access tokens (sessions), refresh tokens and authorization codes.

Access tokens look like Salesforce's — the 15-character org id, "!", then an opaque
part — so an org can be recognised from a token without a lookup.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from ilyd.devorg.org import OrgState


@dataclass
class Session:
    """One access token: who it belongs to and until when it is valid."""

    token: str
    org: OrgState
    user_id: str
    client_id: str
    expires_at: float
    scope: str = "api refresh_token"
    # The refresh-token chain the session was issued from (None for other grants):
    # reusing a rotated-out refresh token ends every session of its chain.
    family: str | None = None

    @property
    def valid(self) -> bool:
        """Whether the token is still accepted."""
        return time.time() < self.expires_at


@dataclass
class RefreshGrant:
    """A refresh token's binding; persisted with --data."""

    token: str
    org_name: str
    user_id: str
    client_id: str
    created_at: float = field(default_factory=time.time)
    # The first token of its rotation chain; every rotation hands the family on.
    family: str = ""

    def __post_init__(self) -> None:
        self.family = self.family or self.token


@dataclass
class AuthCode:
    """A one-time authorization code from the authorize page."""

    code: str
    org: OrgState
    user_id: str
    client_id: str
    redirect_uri: str
    code_challenge: str | None
    expires_at: float


class TokenStore:
    """All tokens of all orgs, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sessions: dict[str, Session] = {}
        self.refresh: dict[str, RefreshGrant] = {}
        self.codes: dict[str, AuthCode] = {}
        # Refresh tokens rotation replaced (kept to recognise their reuse), and the ones a
        # token request is being processed for right now.
        self.retired: dict[str, RefreshGrant] = {}
        self._in_flight: set[str] = set()

    def issue(self, org: OrgState, user_id: str, client_id: str, scope: str,
              family: str | None = None) -> Session:
        """Create an access token with the org's current lifetime (`family`: the refresh
        token chain it comes from)."""
        token = f"{org.identity.org_id[:15]}!AR{secrets.token_urlsafe(72)}"
        session = Session(token, org, user_id, client_id,
                          time.time() + org.settings.token_ttl, scope, family)
        with self._lock:
            self.sessions[token] = session
        return session

    def lookup(self, token: str) -> Session | None:
        """The live session for a token, or None (unknown, expired or revoked)."""
        session = self.sessions.get(token)
        if session is None or not session.valid:
            return None
        return session

    def new_refresh(self, org: OrgState, user_id: str, client_id: str) -> RefreshGrant:
        """Create a refresh token."""
        grant = RefreshGrant(f"5Aep861{secrets.token_urlsafe(60)}", org.identity.name,
                             user_id, client_id)
        with self._lock:
            self.refresh[grant.token] = grant
        return grant

    def begin_refresh(self, token: str) -> bool:
        """Mark a refresh token's request as being processed; False if one already is."""
        with self._lock:
            if token in self._in_flight:
                return False
            self._in_flight.add(token)
            return True

    def end_refresh(self, token: str) -> None:
        """The refresh token's request is answered."""
        with self._lock:
            self._in_flight.discard(token)

    def rotate(self, grant: RefreshGrant) -> RefreshGrant:
        """Replace a refresh token by a new one of the same family; the old one is retired."""
        new = RefreshGrant(f"5Aep861{secrets.token_urlsafe(60)}", grant.org_name,
                           grant.user_id, grant.client_id, family=grant.family)
        with self._lock:
            self.refresh.pop(grant.token, None)
            self.retired[grant.token] = grant
            self.refresh[new.token] = new
        return new

    def revoke_family(self, family: str) -> int:
        """Revoke a rotation chain: its current refresh token and every access token issued
        from the chain. Returns how many access tokens ended."""
        with self._lock:
            for key in [k for k, g in self.refresh.items() if g.family == family]:
                del self.refresh[key]
            victims = [k for k, s in self.sessions.items() if s.family == family]
            for key in victims:
                del self.sessions[key]
        return len(victims)

    def revoke(self, token: str) -> bool:
        """Revoke an access or refresh token; revoking a refresh token also ends the
        sessions issued from the same client for the same user, as Salesforce does."""
        with self._lock:
            if token in self.sessions:
                del self.sessions[token]
                return True
            grant = self.refresh.pop(token, None)
            if grant is None:
                return False
            for key, s in list(self.sessions.items()):
                if s.user_id == grant.user_id and s.client_id == grant.client_id:
                    del self.sessions[key]
            return True

    def expire_org(self, org: OrgState, *, refresh_too: bool = False) -> int:
        """End every access token of an org (and its refresh tokens if asked)."""
        with self._lock:
            victims = [k for k, s in self.sessions.items() if s.org is org]
            for key in victims:
                del self.sessions[key]
            if refresh_too:
                for key in [k for k, g in self.refresh.items()
                            if g.org_name == org.identity.name]:
                    del self.refresh[key]
        return len(victims)
