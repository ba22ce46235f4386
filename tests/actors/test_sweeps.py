"""The reconciliation sweep's schedule (ilyd.actors.sweeps)."""

from __future__ import annotations

from ilyd.actors.sweeps import first_sweep_in


def test_orgs_started_together_sweep_first_at_spread_moments_within_one_interval():
    delays = [first_sweep_in(900.0, rand / 10) for rand in range(10)]
    assert all(450.0 < delay <= 900.0 for delay in delays)
    assert len(set(delays)) == len(delays)
