"""Bulk API 2.0 ingest updates of parsed types: repeated texts, per-row errors kept."""

from __future__ import annotations

from ilyd.devorg import DevOrg
from ilyd.devorg.bulk_jobs import Job

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


def test_stopping_devorg_deletes_every_bulk_jobs_spool_files(client: Client,
                                                             dev: DevOrg) -> None:
    _insert_accounts(client, ["Spooled 1", "Spooled 2"])
    query = _query_job(client, "SELECT Id, Name FROM Account WHERE Name LIKE 'Spooled %'")
    rows = _csv(client.get(f"/jobs/query/{query['id']}/results").text)
    data = "Id,Website\n" + "".join(f"{row[0]},https://spooled.example\n" for row in rows[1:])
    _ingest(client, {"object": "Account", "operation": "update"}, data.encode())
    jobs = dev.bulk_jobs.list(dev.states[dev.orgs[0].name], Job)
    spooled = [job.workdir for job in jobs if getattr(job, "workdir", None) is not None]
    assert len(spooled) == 3  # the insert and the update ingest jobs, the query job
    assert all(path.exists() for path in spooled)
    dev.stop()
    assert not any(path.exists() for path in spooled)
