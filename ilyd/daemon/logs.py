"""Logging: structlog for our code, stdlib logging (requests, urllib3, pykka) routed through
the same pipeline; JSON lines off a terminal (journald), console rendering on one; and a
redaction step that removes tokens, secrets, Authorization values and Salesforce session
ids from every event, whatever logger produced it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

import structlog

REDACTED = "[redacted]"

# Keys whose values are always secret, wherever they appear in an event.
_SECRET_KEYS = re.compile(
    r"(?i)^(authorization|access_token|refresh_token|client_secret|password|secret|token|"
    r"session_id|sessionid|private_key|assertion|sid|cookie)$"
)
# Secrets inside free text: a Salesforce session id (org id "00D…" + "!" + token), bearer
# credentials, and key=value / "key": "value" forms of the secret keys.
_TEXT_PATTERNS = (
    re.compile(r"\b00D[A-Za-z0-9]{12,15}![A-Za-z0-9._\-]+"),
    re.compile(r"(?i)(\b(?:Bearer|OAuth)\s+)[A-Za-z0-9._~+/!\-]+=*"),
    re.compile(
        r"(?i)(\b(?:access_token|refresh_token|client_secret|password|assertion|code|"
        r"authorization)[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]+"
    ),
)


def redact_text(text: str) -> str:
    """Replace every secret-looking substring of `text`."""
    for pattern in _TEXT_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
    return text


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and _SECRET_KEYS.match(k) else _redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_redact(v) for v in value)
    return value


def redact(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: redact secrets in every key and value of the event."""
    return _redact(event_dict)


def _shared_processors(fields: Mapping[str, Any]) -> list[Any]:
    def add_fields(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        return {**fields, **event_dict}

    return [
        *([add_fields] if fields else []),
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        structlog.processors.UnicodeDecoder(),
        redact,
    ]


class _CurrentStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stdout`/`sys.stderr` is when a line is emitted.

    A handler holding the stream object from set-up time writes into a closed file once
    that stream is swapped (the demo's live view, pytest's capture, a redirected CLI).
    """

    def __init__(self, stream_name: str) -> None:
        self._stream_name = stream_name
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return getattr(sys, self._stream_name)

    @stream.setter
    def stream(self, _value: Any) -> None:
        """StreamHandler assigns a stream in __init__; ours is looked up at emit time."""


def configure_logging(
    log_format: str = "auto", level: str = "info", *, stream: str = "stdout",
    fields: Mapping[str, Any] | None = None,
) -> None:
    """Set up structlog and the stdlib root logger (stdout; journald takes it under systemd).

    `stream` is "stdout" (the daemon) or "stderr" (one-shot commands whose stdout is
    their result). Every line, whichever the stream, goes through the redaction step.
    `fields` go into every line (a worker process's `worker` index).
    """
    console = log_format == "console" or (
        log_format == "auto" and getattr(sys, stream).isatty()
    )
    renderer: Any = (
        structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer()
    )
    shared = _shared_processors(fields or {})
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = _CurrentStreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    set_level(level)


def set_level(level: str) -> None:
    """Change the log level live (reload applies `[daemon] log_level` this way)."""
    logging.getLogger().setLevel(level.upper())
    # pykka logs ask-exceptions at INFO; they are ours to report, keep them at debug only.
    logging.getLogger("pykka").setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
