"""The Bayeux client's backoff policy."""

from __future__ import annotations

from ilyd.salesforce.bayeux import BackoffPolicy


def test_a_stream_failing_for_days_waits_the_cap_rather_than_crashing() -> None:
    # A network outage of days at one failure every few minutes passes 1024 failures,
    # where 2.0 ** n no longer fits a float.
    policy = BackoffPolicy(base=1.0, cap=300.0)
    assert 150.0 <= policy.delay(2000) <= 300.0

