"""The refresh's keys of `[defaults.enrich]` / `[org.enrich]`: durations with units, the
share, their problems with key paths, and the effective config showing them."""

from __future__ import annotations

import pytest

from ilyd.config import load_config
from ilyd.config.show import config_data
from tests.config.conftest import GOOD_ORG as ORG
from tests.config.conftest import secret_file, write_config

__all__ = ["secret_file", "write_config"]  # the config tests' fixtures, used here


@pytest.fixture
def load(write_config, secret_file):  # type: ignore[no-untyped-def]
    """Load TOML text (the org's client secret file in place)."""
    return lambda text: load_config(write_config(text))


def test_refresh_after_takes_days_hours_and_zero_turns_it_off(load):
    config = load('[defaults.enrich]\nrefresh_after = "30d"\n'
                   'refresh_interval = "90m"\nrefresh_api_share = 0.02\n' + ORG
                   + '[org.enrich]\nrefresh_after = 0\n')
    defaults = config.defaults.enrich
    assert (defaults.refresh_after, defaults.refresh_interval) == (30 * 86400, 90 * 60)
    assert defaults.refresh_api_share == 0.02
    assert config.orgs[0].enrich.refresh_after == 0


def test_the_refresh_is_on_by_default_every_thirty_days_with_five_percent_of_the_calls(
        load):
    enrich = load(ORG).orgs[0].enrich
    assert (enrich.refresh_after, enrich.refresh_api_share) == (30 * 86400, 0.05)


def test_bad_refresh_values_are_reported_with_their_key_paths(load):
    config = load(ORG + '[org.enrich]\nrefresh_after = "3 weeks"\n'
                   'refresh_api_share = 2\nrefresh_interval = "0s"\n')
    problems = list(config.problems())
    assert any(p.startswith("org[0].enrich.refresh_after: must be a duration like") and
               "'3 weeks'" in p for p in problems), problems
    assert "org[0].enrich.refresh_api_share: must be at most 1.0 (got 2)" in problems
    assert any(p.startswith("org[0].enrich.refresh_interval: must be at least 1s")
               for p in problems), problems


def test_the_effective_config_writes_the_refresh_durations_back_with_units(load):
    data = config_data(load('[defaults.enrich]\nrefresh_after = "12h"\n' + ORG))
    enrich = data["defaults"]["enrich"]
    assert (enrich["refresh_after"], enrich["refresh_interval"]) == ("12h", "6h")
    assert enrich["refresh_api_share"] == 0.05
