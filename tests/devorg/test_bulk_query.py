"""Bulk API 2.0 query jobs: the result is the snapshot taken when the job ran, paged by
locator from its spooled file."""

from __future__ import annotations

import csv
import io

from .conftest import Client, job_in_state


def _csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _query_job(client: Client, soql: str) -> dict:
    job = client.post("/jobs/query", json={"operation": "query", "query": soql})
    assert job.status_code == 200, job.text
    return job_in_state(client, f"/jobs/query/{job.json()['id']}", {"JobComplete"})


def _pages(client: Client, job_id: str, size: int) -> list[list[str]]:
    rows: list[list[str]] = []
    locator = None
    while locator != "null":
        params = {"maxRecords": size, **({"locator": locator} if locator else {})}
        page = client.get(f"/jobs/query/{job_id}/results", params=params)
        assert page.status_code == 200, page.text
        parsed = _csv(page.text)
        assert int(page.headers["Sforce-NumberOfRecords"]) == len(parsed) - 1
        rows += parsed[1:]
        locator = page.headers["Sforce-Locator"]
    return rows


def _insert_accounts(client: Client, names: list[str]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["Name", "Industry"])
    writer.writerows([name, "Tech"] for name in names)
    job = client.post("/jobs/ingest", json={"object": "Account", "operation": "insert"}).json()
    client.http.put(client.base + f"/jobs/ingest/{job['id']}/batches",
                    data=buffer.getvalue().encode(), headers={"Content-Type": "text/csv"})
    client.patch(f"/jobs/ingest/{job['id']}", json={"state": "UploadComplete"})
    info = job_in_state(client, f"/jobs/ingest/{job['id']}", {"JobComplete", "Failed"})
    assert info["numberRecordsFailed"] == 0, info


def test_records_created_after_job_complete_are_not_in_its_results(client: Client) -> None:
    info = _query_job(client, "SELECT Id, Name FROM Account")
    before = info["numberRecordsProcessed"]
    created = client.post("/sobjects/Account", json={"Name": "Late Arrival"})
    assert created.status_code == 201, created.text
    rows = _pages(client, info["id"], 7)
    assert len(rows) == before
    assert created.json()["id"] not in {row[0] for row in rows}
    assert "Late Arrival" not in {row[1] for row in rows}
    again = _query_job(client, "SELECT Id, Name FROM Account")
    assert again["numberRecordsProcessed"] == before + 1


def test_pages_of_any_size_give_every_row_once_even_with_quotes_and_newlines(
        client: Client) -> None:
    names = [f'Acme "{n}", Inc\nline two' if n % 3 == 0 else f"Plain {n}" for n in range(2_500)]
    _insert_accounts(client, names)
    info = _query_job(client, "SELECT Id, Name, Industry FROM Account WHERE Industry = 'Tech'")
    assert info["numberRecordsProcessed"] == 2_500
    whole = _pages(client, info["id"], 100_000)
    assert sorted(row[1] for row in whole) == sorted(names)
    for size in (999, 1_000, 1_313):
        assert _pages(client, info["id"], size) == whole
    # a locator may be fetched again, and out of order: it names a row, not a stream
    first = client.get(f"/jobs/query/{info['id']}/results", params={"maxRecords": 1_200})
    locator = first.headers["Sforce-Locator"]
    later = client.get(f"/jobs/query/{info['id']}/results",
                       params={"maxRecords": 1_200, "locator": locator})
    repeat = client.get(f"/jobs/query/{info['id']}/results",
                        params={"maxRecords": 1_200, "locator": locator})
    assert _csv(later.text) == _csv(repeat.text)
    assert _csv(later.text)[1:] == whole[1_200:2_400]


def test_deleted_query_job_is_gone(client: Client) -> None:
    info = _query_job(client, "SELECT Id FROM Account")
    assert client.delete(f"/jobs/query/{info['id']}").status_code == 204
    assert client.get(f"/jobs/query/{info['id']}/results").status_code == 404


def test_job_listings_show_only_this_orgs_jobs_of_each_kind(client: Client) -> None:
    _insert_accounts(client, ["Listed 1"])
    query = _query_job(client, "SELECT Id FROM Account WHERE Name = 'Listed 1'")
    ingest = client.get("/jobs/ingest").json()
    queries = client.get("/jobs/query").json()
    assert (ingest["done"], ingest["nextRecordsUrl"]) == (True, None)
    assert [j["jobType"] for j in ingest["records"]] == ["V2Ingest"]
    assert [j["id"] for j in queries["records"]] == [query["id"]]
    assert queries["records"][0]["jobType"] == "V2Query"


def test_a_locator_the_job_did_not_hand_out_is_refused(client: Client) -> None:
    _insert_accounts(client, [f"Loc {n}" for n in range(30)])
    info = _query_job(client, "SELECT Id FROM Account")
    path = f"/jobs/query/{info['id']}/results"
    for bad in ("zzzzzz", "-1", "0", " 1", "not a locator"):
        response = client.get(path, params={"maxRecords": 10, "locator": bad})
        assert response.status_code == 400, (bad, response.headers)
        assert response.json()[0]["errorCode"] == "INVALIDLOCATOR"
        assert "Sforce-NumberOfRecords" not in response.headers
    good = client.get(path, params={"maxRecords": 10}).headers["Sforce-Locator"]
    page = client.get(path, params={"maxRecords": 10, "locator": good})
    assert page.status_code == 200
    assert int(page.headers["Sforce-NumberOfRecords"]) == 10
