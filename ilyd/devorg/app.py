"""`DevOrg`: the emulator as an in-process server — orgs, tokens, routes, dispatch."""

from __future__ import annotations

import dataclasses
import re
import time
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import structlog

from ilyd.devorg import bootstrap
from ilyd.devorg.bulk_jobs import JobRegistry
from ilyd.devorg.changes import call_origin, origin_of
from ilyd.devorg.faults import FaultSet, fault_response
from ilyd.devorg.org import OrgState
from ilyd.devorg.rest import RELEASES
from ilyd.devorg.server import HttpServer
from ilyd.devorg.session import Session, TokenStore
from ilyd.devorg.web import ApiError, Request, Response, Router, not_found, sf_error

log = structlog.get_logger(__name__)
MIN_VERSION, MAX_VERSION = min(RELEASES), max(RELEASES)
_VERSION_RE = re.compile(r"^/services/data/v(\d+)\.(\d+)(?:/|$)")


@dataclass(frozen=True)
class OrgInfo:
    """What a client needs to use one emulated org."""

    name: str
    org_id: str
    is_sandbox: bool
    login_url: str
    instance_url: str
    user_id: str
    username: str
    password: str
    client_id: str
    client_secret: str
    refresh_token: str


class DevOrg:
    """A running emulator: one listener, several orgs (production and sandbox)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, orgs: int = 1,
                 sandbox_orgs: int = 0, tls: bool = False, data: str | Path | None = None,
                 seed_records: int = 0, token_ttl: float = 7200.0,
                 tls_dir: str | Path | None = None,
                 first_identity: Mapping[str, str] | None = None,
                 my_domain_port: int = 0) -> None:
        self.tokens = TokenStore()
        self.bulk_jobs = JobRegistry()
        self.faults = FaultSet()
        self.router = Router()
        self.states: dict[str, OrgState] = {}
        self._first_identity = dict(first_identity or {})
        self.ca_file: Path | None = None
        self._persistence = None
        ssl_context = None
        if tls:
            from ilyd.devorg.tls import make_certificates  # noqa: PLC0415 (--tls only)

            ssl_context, self.ca_file = make_certificates(host, tls_dir)
        if data is not None:
            from ilyd.devorg.sqlite_store import SqliteStore  # noqa: PLC0415 (--data only)

            self._persistence = SqliteStore(Path(data))
            self.states = self._persistence.load(self.tokens)
        if not self.states:
            self._create_orgs(orgs, sandbox_orgs, seed_records, token_ttl)
        self._register_routes()
        self._server = HttpServer(host, port, self.dispatch, ssl_context)
        # Salesforce serves logins at login/test.salesforce.com and each org's API at its
        # My Domain. Names under .localhost do not resolve with glibc, so the My Domain
        # host is a second port of the same address, shared by every org (the token or
        # the client id says which org a request is for).
        self._my_domain = HttpServer(host, my_domain_port, self.dispatch, ssl_context,
                                     my_domain=True)
        scheme = "https" if tls else "http"
        shown = f"[{host}]" if ":" in host else host
        self.url = f"{scheme}://{shown}:{self._server.port}"
        self.my_domain_url = f"{scheme}://{shown}:{self._my_domain.port}"
        self.admin = f"{self.url}/_devorg"
        self.started_at = time.time()

    # -- set-up --------------------------------------------------------------------------
    def _create_orgs(self, orgs: int, sandboxes: int, seed_records: int, ttl: float) -> None:
        for index in range(orgs + sandboxes):
            sandbox = index >= orgs
            identity = bootstrap.new_identity(index, sandbox)
            if index == 0 and self._first_identity:
                identity = dataclasses.replace(identity, **self._first_identity)
            state = OrgState(identity, bootstrap.default_settings(ttl), id_start=16)
            bootstrap.setup_records(state)
            for sobject in ("Account", "Lead"):
                bootstrap.seed(state, sobject, seed_records)
            if self._persistence is not None:
                self._persistence.attach(state)
                self._persistence.save_org(state)
                self._persistence.write_all(state)
            self.tokens.new_refresh(state, identity.user_id, identity.client_id)
            self.states[identity.name] = state
        if self._persistence is not None:
            self._persistence.save_tokens(self.tokens)

    def _register_routes(self) -> None:
        # The route registry: the route modules name DevOrg in their types.
        from ilyd.devorg import (  # noqa: PLC0415
            admin,
            bulk_ingest,
            bulk_query,
            cometd,
            composite,
            metadata,
            oauth,
            query,
            rest,
            tooling,
        )
        from ilyd.devorg import collections as sobject_collections  # noqa: PLC0415

        for module in (oauth, rest, query, sobject_collections, composite, tooling,
                       bulk_ingest, bulk_query, admin, cometd, metadata):
            module.register(self.router, self)

    # -- public API ----------------------------------------------------------------------
    @property
    def orgs(self) -> list[OrgInfo]:
        """Every org, in creation order."""
        return [self.info(state) for state in self.states.values()]

    def info(self, state: OrgState) -> OrgInfo:
        """The OrgInfo of one org (with its first refresh token)."""
        i = state.identity
        refresh = next((g.token for g in self.tokens.refresh.values()
                        if g.org_name == i.name and g.user_id == i.user_id), "")
        return OrgInfo(i.name, i.org_id, i.is_sandbox, self.url, self.my_domain_url, i.user_id,
                       i.username, i.password, i.client_id, i.client_secret, refresh)

    def org_by_name(self, name: str) -> OrgState | None:
        """An org by its name (org0, sandbox1 …) or its org id."""
        if name in self.states:
            return self.states[name]
        return next((s for s in self.states.values() if s.identity.org_id[:15] == name[:15]),
                    None)

    def authenticate(self, request: Request) -> Session | None:
        """The session behind a request's `Authorization: Bearer|OAuth <token>` header."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or not token:
            return None
        return self.tokens.lookup(token.strip())

    def start(self) -> DevOrg:
        """Start serving."""
        self._server.start()
        self._my_domain.start()
        log.info("devorg_started", url=self.url, my_domain_url=self.my_domain_url,
                 orgs=len(self.states))
        return self

    def stop(self) -> None:
        """Stop serving, delete the Bulk jobs' spool files and close the state file."""
        self._server.stop()
        self._my_domain.stop()
        self.bulk_jobs.close()
        if self._persistence is not None:
            self._persistence.save_tokens(self.tokens)
            self._persistence.close()

    def __enter__(self) -> DevOrg:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def persist_tokens(self) -> None:
        """Save refresh tokens (after a grant created or rotated one)."""
        if self._persistence is not None:
            self._persistence.save_tokens(self.tokens)

    def persist_org(self, state: OrgState) -> None:
        """Save an org's settings (after an admin change)."""
        if self._persistence is not None:
            self._persistence.save_org(state)

    # -- dispatch ------------------------------------------------------------------------
    def _org_of_request(self, request: Request) -> str | None:
        header = request.headers.get("Authorization", "")
        token = header.partition(" ")[2].strip()
        if token:
            state = self.org_by_name(token[:15])
            return state.identity.name if state else None
        return None

    def dispatch(self, request: Request) -> Response:
        """Route one request: faults, plug-in mounts, auth, call counting, handler."""
        try:
            if self.faults.list() and not request.path.startswith("/_devorg"):
                for fault in self.faults.take(request, self._org_of_request(request)):
                    if fault.kind == "latency":
                        time.sleep(fault.delay)
                    else:
                        return fault_response(fault)
            mounted = self.router.match_mount(request.path)
            if mounted is not None:
                return mounted(request)
            m = _VERSION_RE.match(request.path)
            if m and not MIN_VERSION <= int(m.group(1)) <= MAX_VERSION:
                return not_found()
            route, params, path_seen = self.router.match(request.method, request.path)
            if route is None:
                if path_seen:
                    return sf_error(405, "METHOD_NOT_ALLOWED",
                                    f"HTTP Method '{request.method}' not allowed.")
                return not_found()
            request.params = params
            if route.auth != "api":
                return route.handler(request)
            return self._api_call(request, route.handler, route.name)
        except ApiError as exc:
            return exc.response
        except Exception:
            error_id = uuid.uuid4().int % 10**9
            log.error("devorg_unexpected_error", path=request.path, error_id=error_id,
                      trace=traceback.format_exc())
            return sf_error(500, "UNKNOWN_EXCEPTION",
                            "An unexpected error occurred. Please include this ErrorId if you "
                            f"contact support: {error_id}-{error_id % 99991} ({error_id})")

    def _api_call(self, request: Request, handler: object, name: str) -> Response:
        session = self.authenticate(request)
        if session is None:
            return sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        org = session.org
        if not org.access(session.user_id).has("PermissionsApiEnabled"):
            return sf_error(403, "API_DISABLED_FOR_ORG",
                            "The REST API is not enabled for this Organization.")
        allowed, used, limit = org.usage.try_consume(f"{request.method} {name}")
        usage = {"Sforce-Limit-Info": f"api-usage={used}/{limit}"}
        if not allowed:
            response = sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        else:
            request.session = session
            origin = call_origin.set(origin_of(
                "toolingrest" if name.startswith("tooling.") else "rest",
                str(request.params.get("version") or ""),
                request.headers.get("Sforce-Call-Options", "")))
            try:
                response = handler(request)  # type: ignore[operator]
            except ApiError as exc:
                response = exc.response
            finally:
                call_origin.reset(origin)
        response.headers.update(usage)
        return response
