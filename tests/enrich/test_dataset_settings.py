"""Dataset settings from a config table: every problem reported with its key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from ilyd.enrich.dataset import DatasetProvider
from ilyd.enrich.dataset_settings import (
    SAMPLE_MAPPING,
    DatasetFormat,
    DatasetSettings,
    sample_dataset_path,
)
from ilyd.errors import ConfigError


def test_a_minimal_table_uses_the_sample_columns(tmp_path: Path) -> None:
    settings = DatasetSettings.from_config(
        {"type": "dataset", "path": "companies.csv"}, base_dir=tmp_path)
    assert settings.path == tmp_path / "companies.csv"
    assert dict(settings.mapping) == dict(SAMPLE_MAPPING)
    assert settings.resolved_format is DatasetFormat.CSV
    assert (settings.name, settings.domain_column, settings.table) == (
        "dataset", "domain", "companies")


def test_at_sample_names_the_bundled_dataset() -> None:
    settings = DatasetSettings.from_config({"path": "@sample", "name": "demo"})
    assert settings.path == sample_dataset_path()
    provider = DatasetProvider(settings)
    assert provider.name == "demo"
    assert provider.lookup("globex.test").found


def test_every_problem_is_reported_at_once_with_its_key_path() -> None:
    with pytest.raises(ConfigError) as info:
        DatasetSettings.from_config(
            {"pth": "x.csv", "format": "xlsx", "name": 3, "mapping": {"a": 1}},
            key="org.acme.provider")
    problems = info.value.problems
    assert "org.acme.provider.pth: unknown key (did you mean 'path'?)" in problems
    assert any(p.startswith("org.acme.provider.path: missing") for p in problems)
    assert "org.acme.provider.format: must be one of csv, jsonl, sqlite" in problems
    assert "org.acme.provider.name: must be a non-empty string" in problems
    assert "org.acme.provider.mapping.a: must be an Ily field API name" in problems


def test_mapping_targets_are_checked_against_the_catalogue() -> None:
    with pytest.raises(ConfigError, match=r"provider\.mapping\.n: 'Ily_Nme__c' is not an Ily"):
        DatasetSettings.from_config({"path": "a.csv", "mapping": {"n": "Ily_Nme__c"}})


def test_an_explicit_format_is_kept(tmp_path: Path) -> None:
    settings = DatasetSettings.from_config({"path": "/data/companies", "format": "SQLite"})
    assert settings.resolved_format is DatasetFormat.SQLITE
