"""Request, Response and the router: the small web layer every devorg endpoint uses.

Routes are regular expressions grouped under path prefixes; a plug-in (the CometD
endpoint) mounts a whole prefix with one call: `router.mount("/cometd/", handler)`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from ilyd.devorg.session import Session


@dataclass
class Request:
    """One HTTP request as a handler sees it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    read_body: Callable[[], bytes]
    params: dict[str, str] = field(default_factory=dict)
    session: Session | None = None  # set for authenticated API routes
    client: tuple[str, int] | None = None
    _body: bytes | None = None
    raw: Any = None  # the BaseHTTPRequestHandler, for plug-ins that stream
    # True on the My Domain (instance) listener, False on the login host's: the grants
    # Salesforce accepts differ between the two.
    on_my_domain: bool = False

    @property
    def body(self) -> bytes:
        """The request body (read once)."""
        if self._body is None:
            self._body = self.read_body()
        return self._body

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First value of a query-string parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError on bad JSON."""
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        """The body (or query string, for GET) parsed as a URL-encoded form."""
        source = self.body.decode("utf-8", "replace") if self.method != "GET" else ""
        parsed = parse_qs(source, keep_blank_values=True)
        merged = {k: v[0] for k, v in self.query.items()}
        merged.update({k: v[0] for k, v in parsed.items()})
        return merged


@dataclass
class Response:
    """What a handler returns. A non-bytes iterable body is sent chunked (streaming)."""

    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = "application/json;charset=UTF-8"
    drop: bool = False  # close the connection without answering (fault injection)


def json_response(obj: object, status: int = 200, headers: Mapping[str, str] | None = None
                  ) -> Response:
    """A JSON response with Salesforce's content type."""
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(status, body, dict(headers or {}))


def sf_error(status: int, error_code: str, message: str,
             fields: list[str] | None = None) -> Response:
    """Salesforce's top-level REST error: a JSON array of {message, errorCode[, fields]}."""
    item: dict[str, object] = {"message": message, "errorCode": error_code}
    if fields:
        item["fields"] = fields
    return json_response([item], status)


def not_found() -> Response:
    """404 NOT_FOUND with Salesforce's wording."""
    return sf_error(404, "NOT_FOUND", "The requested resource does not exist")


class ApiError(Exception):
    """Raised inside a handler to answer with a Salesforce error array."""

    def __init__(self, status: int, error_code: str, message: str,
                 fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.response = sf_error(status, error_code, message, fields)


Handler = Callable[[Request], Response]


@dataclass
class Route:
    """A method + path pattern → handler; `name` is the endpoint used in call counts."""

    methods: frozenset[str]
    pattern: re.Pattern[str]
    handler: Handler
    name: str
    auth: str  # "api" (bearer token, counted) | "public"


class Router:
    """Dispatches by path prefix, then by pattern within the prefix."""

    def __init__(self) -> None:
        self._mounts: list[tuple[str, Handler]] = []
        self._routes: list[Route] = []

    def mount(self, prefix: str, handler: Handler) -> None:
        """Send every request under `prefix` to `handler` (longest prefix wins)."""
        self._mounts.append((prefix, handler))
        self._mounts.sort(key=lambda m: -len(m[0]))

    def add(self, methods: str, pattern: str, handler: Handler, name: str,
            auth: str = "api") -> None:
        """Register a route; `pattern` is a regex matched against the full path."""
        self._routes.append(Route(frozenset(methods.split()), re.compile(pattern + r"/?$"),
                                  handler, name, auth))

    def match_mount(self, path: str) -> Handler | None:
        """The mounted handler whose prefix covers `path`, if any."""
        for prefix, handler in self._mounts:
            if path.startswith(prefix):
                return handler
        return None

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, params, path_matched_other_method)."""
        path_seen = False
        for route in self._routes:
            m = route.pattern.match(path)
            if m:
                if method in route.methods:
                    return route, m.groupdict(), True
                path_seen = True
        return None, {}, path_seen
