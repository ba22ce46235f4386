"""Log redaction: tokens, secrets, Authorization values and session ids never reach output."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from ilyd.daemon.logs import REDACTED, configure_logging, redact_text

SESSION_ID = "00D5g000004XyZ1!AQ8AQFm4kzGx.PL_Sample-Token"


@pytest.fixture(autouse=True)
def _restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_session_ids_bearer_tokens_and_form_secrets_are_redacted():
    text = (f"Authorization: Bearer {SESSION_ID} "
            "body grant_type=refresh_token&refresh_token=5Aep861xyz&client_secret=abc123")
    redacted = redact_text(text)
    assert SESSION_ID not in redacted
    assert "5Aep861xyz" not in redacted
    assert "abc123" not in redacted
    assert "grant_type=refresh_token" in redacted
    assert redact_text("error_code=INVALID_FIELD") == "error_code=INVALID_FIELD"


def test_structlog_and_stdlib_events_are_redacted_as_json(capsys):
    configure_logging("json", "info")
    structlog.get_logger("ilyd.test").info(
        "token refreshed", access_token=SESSION_ID, headers={"Authorization": "Bearer x1y2"},
        org="acme",
    )
    logging.getLogger("urllib3.connectionpool").warning(
        "POST /services/oauth2/token body refresh_token=5Aep861secret sid=%s", SESSION_ID
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["access_token"] == REDACTED
    assert lines[0]["headers"] == {"Authorization": REDACTED}
    assert lines[0]["org"] == "acme"
    assert lines[1]["logger"] == "urllib3.connectionpool"
    assert "5Aep861secret" not in lines[1]["event"]
    assert SESSION_ID not in lines[1]["event"]
