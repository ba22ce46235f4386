"""The writer window's keys of `[defaults.enrich]` / `[org.enrich]`: `api_share` and
`writer_window_max`, their defaults, their problems with key paths, and the effective
config showing them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ilyd.config import Config, load_config
from ilyd.config.show import config_data
from tests.config.conftest import GOOD_ORG


@pytest.fixture
def load(secret_file: Path, write_config: Callable[[str], Path]) -> Callable[[str], Config]:
    return lambda text: load_config(write_config(text))


def test_the_window_widens_up_to_thirty_seconds_past_a_fifth_of_the_allowance_by_default(
        load: Callable[[str], Config]) -> None:
    enrich = load(GOOD_ORG).orgs[0].enrich
    assert (enrich.writer_window, enrich.writer_window_max, enrich.api_share) == (0.1, 30.0, 0.2)


def test_an_org_sets_its_own_share_and_widest_window(load: Callable[[str], Config]) -> None:
    enrich = load(GOOD_ORG + "[org.enrich]\napi_share = 0.05\nwriter_window_max = 120\n"
                  ).orgs[0].enrich
    assert (enrich.api_share, enrich.writer_window_max) == (0.05, 120.0)


def test_a_widest_window_shorter_than_the_window_is_reported_with_its_key_path(
        load: Callable[[str], Config]) -> None:
    config = load(GOOD_ORG + "[org.enrich]\nwriter_window = 5\nwriter_window_max = 1\n"
                  "api_share = 0\n")
    assert "org[0].enrich.api_share: must be at least 0.001 (got 0)" in list(config.problems())
    config = load(GOOD_ORG + "[org.enrich]\nwriter_window = 5\nwriter_window_max = 1\n")
    assert ("org[0].enrich.writer_window_max: must be at least writer_window (5) (got 1)"
            in list(config.problems()))


def test_the_effective_config_shows_the_share_and_the_widest_window(
        load: Callable[[str], Config]) -> None:
    enrich = config_data(load(GOOD_ORG))["defaults"]["enrich"]
    assert (enrich["api_share"], enrich["writer_window_max"]) == (0.2, 30.0)
