"""The refresh tests run on the resync tests' devorg, org and state database fixtures."""

from __future__ import annotations

from tests.resync.conftest import dev, env, next_org, provider

__all__ = ["dev", "env", "next_org", "provider"]
