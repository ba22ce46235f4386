"""The dataset provider reads CSV, JSONL and SQLite files and says clearly what is wrong."""

from __future__ import annotations

import csv
import json
import sqlite3
import threading
from pathlib import Path

import pytest

from ilyd.enrich.dataset import (
    SAMPLE_MAPPING,
    DatasetFormat,
    DatasetProvider,
    DatasetSettings,
    sample_dataset_path,
)
from ilyd.enrich.domain import extract_domain
from ilyd.enrich.provider import Provider
from ilyd.errors import ConfigError

MAPPING = {"name": "Ily_Company_Name__c", "staff": "Ily_Employee_Count__c",
           "tech": "Ily_Technologies__c"}


def _settings(path: Path, **kw: object) -> DatasetSettings:
    return DatasetSettings(path=path, mapping=MAPPING, **kw)  # type: ignore[arg-type]


def _write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_rows_are_found_by_normalised_domain(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "c.csv", "domain,name,staff,tech\n"
                      "https://www.Acme.example/,Acme,120,\n"
                      "globex.test,Globex,,Fastly (CDN)\n")
    provider = DatasetProvider(_settings(path))
    assert isinstance(provider, Provider)
    assert len(provider) == 2
    acme = provider.lookup("acme.example")
    assert acme.found
    assert acme.provider == "dataset"
    # empty cells are absent, not empty strings
    assert dict(acme.values) == {"Ily_Company_Name__c": "Acme", "Ily_Employee_Count__c": "120"}
    assert dict(provider.lookup("globex.test").values) == {
        "Ily_Company_Name__c": "Globex", "Ily_Technologies__c": "Fastly (CDN)"}
    missing = provider.lookup("initech.example")
    assert (missing.found, missing.domain) == (False, "initech.example")


def test_the_first_row_wins_for_a_duplicated_domain(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "c.csv", "domain,name,staff,tech\nacme.example,First,,\n"
                      "www.acme.example,Second,,\n")
    provider = DatasetProvider(_settings(path))
    assert provider.lookup("acme.example").values["Ily_Company_Name__c"] == "First"


def test_jsonl_objects_may_carry_numbers_and_lists(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    lines = [{"domain": "acme.example", "name": "Acme", "staff": 120, "tech": ["A", "B"]},
             {"domain": "globex.test", "name": "Globex"}]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n", encoding="utf-8")
    provider = DatasetProvider(_settings(path))
    assert dict(provider.lookup("acme.example").values) == {
        "Ily_Company_Name__c": "Acme", "Ily_Employee_Count__c": 120,
        "Ily_Technologies__c": ["A", "B"]}
    assert provider.lookup("globex.test").found


def _make_sqlite(path: Path, rows: list[tuple[str, str, int | None, str | None]]) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE companies (domain TEXT PRIMARY KEY, name TEXT, staff INTEGER,"
                     " tech TEXT)")
        conn.executemany("INSERT INTO companies VALUES (?, ?, ?, ?)", rows)
    conn.close()
    return path


def test_sqlite_is_queried_in_place(tmp_path: Path) -> None:
    path = _make_sqlite(tmp_path / "c.sqlite", [("acme.example", "Acme", 120, None)])
    provider = DatasetProvider(_settings(path))
    assert len(provider) == 1
    assert dict(provider.lookup("ACME.example").values) == {
        "Ily_Company_Name__c": "Acme", "Ily_Employee_Count__c": 120}
    assert not provider.lookup("globex.test").found
    answers = provider.lookup_many(["acme.example", "globex.test"])
    assert [a.found for a in answers.values()] == [True, False]  # type: ignore[union-attr]
    provider.close()


def test_lookups_from_many_threads_all_answer(tmp_path: Path) -> None:
    rows = [(f"c{i}.example", f"C{i}", i, None) for i in range(200)]
    provider = DatasetProvider(_settings(_make_sqlite(tmp_path / "c.db", rows)))
    errors: list[BaseException] = []
    found: list[bool] = []

    def work(offset: int) -> None:
        try:
            found.extend(provider.lookup(f"c{(offset + i) % 200}.example").found
                         for i in range(200))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n * 13,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert found == [True] * 800


def test_reload_swaps_in_the_new_file_and_keeps_the_old_one_when_it_is_bad(
    tmp_path: Path,
) -> None:
    path = _write_csv(tmp_path / "c.csv", "domain,name,staff,tech\nacme.example,Acme,,\n")
    provider = DatasetProvider(_settings(path))
    _write_csv(path, "domain,name,staff,tech\nacme.example,Acme 2,,\nglobex.test,Globex,,\n")
    assert provider.reload() == 2
    assert provider.lookup("acme.example").values["Ily_Company_Name__c"] == "Acme 2"
    _write_csv(path, "domain,name,staff,tech\nnot a domain,X,,\n")
    with pytest.raises(ConfigError, match=r"c\.csv:2"):
        provider.reload()
    assert provider.lookup("globex.test").found  # still the last good data


def test_reload_of_sqlite_reopens_the_file(tmp_path: Path) -> None:
    path = _make_sqlite(tmp_path / "c.sqlite", [("acme.example", "Acme", 1, None)])
    provider = DatasetProvider(_settings(path))
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO companies VALUES ('globex.test', 'Globex', 2, NULL)")
    conn.close()
    assert provider.reload() == 2
    assert provider.lookup("globex.test").found


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.csv", "domain,name,staff,tech\nacme.example,A,1,x,extra\n",
         r"bad\.csv:2: row has a different number of columns"),
        ("short.csv", "domain,name,staff,tech\nacme.example,A\n",
         r"short\.csv:2: row has a different number of columns"),
        ("junk.csv", "domain,name,staff,tech\nacme.example,A,,\nn/a,B,,\n",
         r"junk\.csv:3: domain 'n/a' is not a usable domain"),
        ("ip.csv", "domain,name,staff,tech\n10.0.0.1,A,,\n", r"ip\.csv:2: .*IP address"),
        ("nohead.csv", "site,name,staff,tech\nacme.example,A,,\n",
         r"nohead\.csv:1: header has no column\(s\) 'domain'"),
        ("quote.csv", 'domain,name,staff,tech\nacme.example,"A,,\n',
         r"quote\.csv:\d+: not valid CSV"),
        ("bad.jsonl", '{"domain": "acme.example"}\n{"domain": \n',
         r"bad\.jsonl:2: not valid JSON"),
        ("list.jsonl", '["acme.example"]\n', r"list\.jsonl:1: is a JSON list, not an object"),
        ("nokey.jsonl", '{"site": "acme.example"}\n', r"nokey\.jsonl:1: object has no 'domain'"),
        ("weird.txt", "domain\n", r"cannot tell the format from the suffix '\.txt'"),
    ],
)
def test_bad_files_name_the_file_and_line(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = _write_csv(tmp_path / name, content)
    with pytest.raises(ConfigError, match=message):
        DatasetProvider(_settings(path))


def test_non_utf8_csv_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"domain,name,staff,tech\nacme.example,Soci\xe9t\xe9,,\n")
    with pytest.raises(ConfigError, match=r"latin\.csv:\d+: not UTF-8 text"):
        DatasetProvider(_settings(path))


def test_missing_and_non_sqlite_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.csv: cannot be read"):
        DatasetProvider(_settings(tmp_path / "nope.csv"))
    with pytest.raises(ConfigError, match=r"nope\.sqlite: no such file"):
        DatasetProvider(_settings(tmp_path / "nope.sqlite"))
    fake = _write_csv(tmp_path / "fake.sqlite", "this is not a database at all" * 100)
    with pytest.raises(ConfigError, match=r"fake\.sqlite: cannot be read as SQLite"):
        DatasetProvider(_settings(fake))


def test_sqlite_without_the_table_or_columns_says_what_it_has(tmp_path: Path) -> None:
    path = _make_sqlite(tmp_path / "c.sqlite", [])
    with pytest.raises(ConfigError, match="has no table 'firms'"):
        DatasetProvider(_settings(path, table="firms"))
    with pytest.raises(ConfigError, match=r"no column\(s\) 'site'.*it has domain, name"):
        DatasetProvider(_settings(path, domain_column="site"))


def test_mapping_to_a_field_we_do_not_manage_is_rejected_with_a_hint(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "c.csv", "domain,name\nacme.example,A\n")
    settings = DatasetSettings(path=path, mapping={"name": "Ily_Company__c",
                                                   "x": "Ily_Match_Status__c"})
    with pytest.raises(ConfigError) as info:
        DatasetProvider(settings)
    problems = info.value.problems
    assert any("did you mean 'Ily_Company_Name__c'" in p for p in problems)
    assert any("mapping.x: 'Ily_Match_Status__c' is not an Ily data field" in p for p in problems)


def test_explicit_format_overrides_the_suffix(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "companies.txt", '{"domain": "acme.example", "name": "A"}\n')
    provider = DatasetProvider(_settings(path, format=DatasetFormat.JSONL))
    assert provider.lookup("acme.example").found


def test_bundled_sample_has_thousands_of_reserved_domain_companies() -> None:
    path = sample_dataset_path()
    provider = DatasetProvider(DatasetSettings(path=path, name="sample"))
    assert len(provider) >= 2000
    acme = provider.lookup("acme.example")
    assert acme.values["Ily_Company_Name__c"] == "Acme Corporation"
    assert set(acme.values) <= set(SAMPLE_MAPPING.values())
    assert len(acme.values) >= 12  # the fixed demo rows have no holes
    with path.open(encoding="utf-8", newline="") as handle:
        domains = [row["domain"] for row in csv.DictReader(handle)]
    assert all(d.endswith((".example", ".test")) for d in domains)
    assert all(extract_domain(d).domain == d for d in domains)
    assert len(set(domains)) == len(domains)
