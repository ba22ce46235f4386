"""The dedicated-integration-user check reads LoginHistory: browser logins in the last
30 days mean a person uses the account (WARN); OAuth logins such as ilyd's own do not."""

from __future__ import annotations

from ilyd.provision.checks import CheckResult, Status

from .conftest import Env

STEP = "dedicated integration user"


def _line(env: Env) -> CheckResult:
    return next(r for r in env.provisioner().check().results if r.step == STEP)


def test_an_account_only_used_through_oauth_passes(env: Env) -> None:
    env.admin("POST", "/logins", {"login_type": "Remote Access 2.0"})
    line = _line(env)  # the client's own password grant is an OAuth login too
    assert line.status is Status.PASS, line
    assert "no interactive logins in the last 30 days" in line.summary


def test_a_recent_browser_login_warns_with_the_consequence_and_the_fix(env: Env) -> None:
    env.admin("POST", "/logins", {"days_ago": 3, "source_ip": "198.51.100.4"})
    env.admin("POST", "/logins", {"days_ago": 1, "source_ip": "198.51.100.9"})
    line = _line(env)
    assert line.status is Status.WARN, line
    assert "2 time(s) in the last 30 days" in line.summary
    assert "198.51.100.9" in line.summary  # the latest one
    assert "enrichment stops" in (line.consequence or "")
    assert "API Only User" in (line.fix or "")
    assert f"ilyd connect {env.org.name}" in (line.fix or "")


def test_browser_logins_older_than_30_days_or_failed_do_not_warn(env: Env) -> None:
    env.admin("POST", "/logins", {"days_ago": 45})
    env.admin("POST", "/logins", {"status": "Invalid Password"})
    assert _line(env).status is Status.PASS


def test_another_users_browser_logins_do_not_count(env: Env) -> None:
    env.admin("POST", "/logins", {"user_id": "other"})
    assert _line(env).status is Status.PASS
