"""Hypothesis settings shared by the fuzz suite: reproducible (derandomized, no example
database) so `make test` runs the same examples every time, and sized to keep the whole
suite within about a minute."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# Pure functions: many examples, each fast.
PURE = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
# Real sockets and servers: fewer examples, no per-example deadline (a loaded machine).
NETWORK = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow,
                                          HealthCheck.function_scoped_fixture])
