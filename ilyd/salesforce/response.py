"""`HttpResponse`: a Salesforce answer, read whole — what `OrgHttp.request`,
`send_with_retry` and `DirectSession.request` return, whichever path carried the call.

The kept-connection path builds it from its own reply; the requests path wraps a
`requests.Response` after reading its body once. Only the streamed Bulk result reads
(`OrgHttp.stream`) hand out requests' own object, for its socket-backed `raw`.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import requests

__all__ = ["Headers", "HttpResponse"]


class Headers(Mapping[str, str]):
    """Response headers looked up by any case; a repeated header's values are joined
    with ", " in order (RFC 9110 section 5.3), as requests shows them."""

    __slots__ = ("_items",)

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        items: dict[str, tuple[str, str]] = {}
        for name, value in pairs:
            key = name.lower()
            seen = items.get(key)
            items[key] = (seen[0], f"{seen[1]}, {value}") if seen else (name, value)
        self._items = items

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


class HttpResponse:
    """One HTTP answer: status, reason, headers, the (decoded) body and the URL asked."""

    __slots__ = ("content", "headers", "reason", "status_code", "url")

    def __init__(self, status_code: int, reason: str, headers: Headers, content: bytes,
                 url: str) -> None:
        self.status_code = status_code
        self.reason = reason
        self.headers = headers
        self.content = content
        self.url = url

    @classmethod
    def from_requests(cls, response: requests.Response) -> HttpResponse:
        """The answer of a (not streamed) requests call, its body read here, once."""
        return cls(response.status_code, response.reason or "",
                   Headers(response.headers.items()), response.content or b"", response.url)

    @property
    def text(self) -> str:
        """The body as text: in the charset the Content-Type names, else UTF-8 (what
        Salesforce sends); undecodable bytes replaced, as the text is for messages."""
        charset = _charset(self.headers.get("Content-Type", "")) or "utf-8"
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:  # a charset Python does not know
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError when it is not JSON."""
        return jsonlib.loads(self.content)

    def __repr__(self) -> str:
        return f"<HttpResponse [{self.status_code}] {self.url}>"


def _charset(content_type: str) -> str | None:
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None
