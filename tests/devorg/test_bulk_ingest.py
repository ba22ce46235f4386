"""Bulk API 2.0 ingest updates of parsed types: repeated texts, per-row errors kept."""

from __future__ import annotations

from .conftest import Client
from .test_bulk import _csv, _ingest
from .test_bulk_query import _insert_accounts, _query_job


def test_update_of_repeated_numbers_fails_only_the_bad_rows_each_with_its_error(
        client: Client) -> None:
    _insert_accounts(client, [f"Numbered {n}" for n in range(6)])
    job = _query_job(client, "SELECT Id FROM Account WHERE Name LIKE 'Numbered %'")
    ids = [row[0] for row in _csv(client.get(f"/jobs/query/{job['id']}/results").text)[1:]]
    counts = ["50", "50", "5.5", "50", "abc", "50"]
    data = "Id,NumberOfEmployees\n" + "".join(
        f"{rid},{count}\n" for rid, count in zip(ids, counts, strict=True))
    info = _ingest(client, {"object": "Account", "operation": "update"}, data.encode())
    assert info["numberRecordsProcessed"] == 6
    assert info["numberRecordsFailed"] == 2
    failed = _csv(client.get(f"/jobs/ingest/{info['id']}/failedResults").text)
    assert sorted(row[3] for row in failed[1:]) == ["5.5", "abc"]
    assert all(row[1].startswith("INVALID_TYPE_ON_FIELD_IN_RECORD:NumberOfEmployees")
               for row in failed[1:])
    stored = client.query("SELECT Id, NumberOfEmployees FROM Account "
                          "WHERE Name LIKE 'Numbered %'")["records"]
    assert sorted(r["NumberOfEmployees"] for r in stored if r["NumberOfEmployees"]) == [50] * 4
