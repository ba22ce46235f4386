"""What enriching a record keeps between records: per company answers and per host
domains are built once and shared, and a dataset reload is never answered from what
the old file said."""

from __future__ import annotations

from pathlib import Path

from ilyd.enrich.dataset import DatasetProvider, DatasetSettings
from ilyd.enrich.domain import record_domain

MAPPING = {"name": "Ily_Company_Name__c"}


def test_a_company_asked_about_again_gets_the_answer_built_the_first_time_until_a_reload(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.csv"
    path.write_text("domain,name\nacme.example, Acme \n", encoding="utf-8")
    provider = DatasetProvider(DatasetSettings(path=path, mapping=MAPPING))
    first = provider.lookup("acme.example")
    assert provider.lookup(" ACME.example") is first
    assert first.values == {"Ily_Company_Name__c": "Acme"}

    path.write_text("domain,name\nacme.example,Acme 2\n", encoding="utf-8")
    provider.reload()
    assert provider.lookup("acme.example").values == {"Ily_Company_Name__c": "Acme 2"}


def test_the_addresses_of_two_people_at_one_company_give_one_shared_result() -> None:
    first = record_domain("Lead", {"Email": "ann@Sales.Initech.example"})
    second = record_domain("Lead", {"Email": "bob@sales.initech.example."})
    assert first is second
    assert (first.domain, first.source, first.reason) == ("initech.example", "Email", None)
