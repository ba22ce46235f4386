"""The refresh's keys of `[defaults.enrich]` / `[org.enrich]`: durations with units, the
share, their problems with key paths, and the effective config showing them."""

from __future__ import annotations

from pathlib import Path

from ilyd.config import load_config
from ilyd.config.show import config_data

ORG = """
[[org]]
name = "acme"
environment = "https://acme.my.salesforce.com"
auth = "client_credentials"
client_id = "3MVG9-client"
client_secret_file = "client.secret"
"""


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    secret = tmp_path / "client.secret"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    path = tmp_path / "ilyd.toml"
    path.write_text(text)
    return load_config(path)


def test_refresh_after_takes_days_hours_and_zero_turns_it_off(tmp_path):
    config = _load(tmp_path, '[defaults.enrich]\nrefresh_after = "30d"\n'
                   'refresh_interval = "90m"\nrefresh_api_share = 0.02\n' + ORG
                   + '[org.enrich]\nrefresh_after = 0\n')
    defaults = config.defaults.enrich
    assert (defaults.refresh_after, defaults.refresh_interval) == (30 * 86400, 90 * 60)
    assert defaults.refresh_api_share == 0.02
    assert config.orgs[0].enrich.refresh_after == 0


def test_the_refresh_is_on_by_default_every_thirty_days_with_five_percent_of_the_calls(
        tmp_path):
    enrich = _load(tmp_path, ORG).orgs[0].enrich
    assert (enrich.refresh_after, enrich.refresh_api_share) == (30 * 86400, 0.05)


def test_bad_refresh_values_are_reported_with_their_key_paths(tmp_path):
    config = _load(tmp_path, ORG + '[org.enrich]\nrefresh_after = "3 weeks"\n'
                   'refresh_api_share = 2\nrefresh_interval = "0s"\n')
    problems = list(config.problems())
    assert any(p.startswith("org[0].enrich.refresh_after: must be a duration like") and
               "'3 weeks'" in p for p in problems), problems
    assert "org[0].enrich.refresh_api_share: must be at most 1.0 (got 2)" in problems
    assert any(p.startswith("org[0].enrich.refresh_interval: must be at least 1s")
               for p in problems), problems


def test_the_effective_config_writes_the_refresh_durations_back_with_units(tmp_path):
    data = config_data(_load(tmp_path, '[defaults.enrich]\nrefresh_after = "12h"\n' + ORG))
    enrich = data["defaults"]["enrich"]
    assert (enrich["refresh_after"], enrich["refresh_interval"]) == ("12h", "6h")
    assert enrich["refresh_api_share"] == 0.05
