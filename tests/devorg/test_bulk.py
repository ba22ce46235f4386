"""Bulk API 2.0: ingest jobs (states, results, delimiters, batches) and query jobs."""

from __future__ import annotations

import csv
import io

from .conftest import Client, job_in_state


def _ingest(client: Client, body: dict, data: bytes) -> dict:
    job = client.post("/jobs/ingest", json={"contentType": "CSV", **body})
    assert job.status_code == 200, job.text
    info = job.json()
    assert info["state"] == "Open"
    assert info["contentUrl"] == f"services/data/v59.0/jobs/ingest/{info['id']}/batches"
    upload = client.http.put(client.base + f"/jobs/ingest/{info['id']}/batches", data=data,
                             headers={"Content-Type": "text/csv"})
    assert upload.status_code == 201
    closed = client.patch(f"/jobs/ingest/{info['id']}", json={"state": "UploadComplete"})
    assert closed.json()["state"] == "UploadComplete"
    return job_in_state(client, f"/jobs/ingest/{info['id']}", {"JobComplete", "Failed"})


def _csv(text: str, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


def test_ingest_insert_and_update_report_successes_and_failures(client: Client) -> None:
    data = b"Name,Website\r\nOne,one.test\r\nTwo,two.test\r\n,nameless.test\r\n"
    info = _ingest(client, {"object": "Account", "operation": "insert", "lineEnding": "CRLF"},
                   data)
    assert info["state"] == "JobComplete"
    assert info["numberRecordsProcessed"] == 3
    assert info["numberRecordsFailed"] == 1
    ok = _csv(client.get(f"/jobs/ingest/{info['id']}/successfulResults").text)
    assert ok[0] == ["sf__Id", "sf__Created", "Name", "Website"]
    assert [row[1] for row in ok[1:]] == ["true", "true"]
    bad = _csv(client.get(f"/jobs/ingest/{info['id']}/failedResults").text)
    assert bad[0][:2] == ["sf__Id", "sf__Error"]
    assert bad[1][1].startswith("REQUIRED_FIELD_MISSING:Required fields are missing: [Name]")
    updates = "Id|Website\n" + "".join(f"{row[0]}|updated.test\n" for row in ok[1:])
    info = _ingest(client, {"object": "Account", "operation": "update",
                            "columnDelimiter": "PIPE"}, updates.encode())
    assert info["numberRecordsFailed"] == 0
    got = client.get(f"/sobjects/Account/{ok[1][0]}").json()
    assert got["Website"] == "updated.test"


def test_ingest_upsert_and_delete(client: Client) -> None:
    client.post("/tooling/sobjects/CustomField", json={
        "FullName": "Account.Ext__c",
        "Metadata": {"label": "Ext", "type": "Text", "length": 20, "externalId": True}})
    ps = client.post("/sobjects/PermissionSet", json={"Name": "E", "Label": "E"}).json()["id"]
    client.post("/sobjects/FieldPermissions", json={
        "ParentId": ps, "SobjectType": "Account", "Field": "Account.Ext__c",
        "PermissionsRead": True, "PermissionsEdit": True})
    client.post("/sobjects/PermissionSetAssignment", json={
        "AssigneeId": client.org.user_id, "PermissionSetId": ps})
    info = _ingest(client, {"object": "Account", "operation": "upsert",
                            "externalIdFieldName": "Ext__c"},
                   b"Ext__c,Name\nk1,First\nk2,Second\n")
    assert info["numberRecordsFailed"] == 0
    again = _ingest(client, {"object": "Account", "operation": "upsert",
                             "externalIdFieldName": "Ext__c"}, b"Ext__c,Name\nk1,Renamed\n")
    created = _csv(client.get(f"/jobs/ingest/{again['id']}/successfulResults").text)
    assert created[1][1] == "false"
    doomed = created[1][0]
    deleted = _ingest(client, {"object": "Account", "operation": "delete"},
                      f"Id\n{doomed}\n".encode())
    assert deleted["numberRecordsFailed"] == 0
    assert client.get(f"/sobjects/Account/{doomed}").status_code == 404


def test_ingest_counts_one_batch_per_ten_thousand_records(client: Client) -> None:
    before = client.get("/limits").json()["DailyBulkApiBatches"]["Remaining"]
    rows = "".join(f"Company {i}\n" for i in range(10_001))
    info = _ingest(client, {"object": "Account", "operation": "insert"},
                   ("Name\n" + rows).encode())
    assert info["numberRecordsProcessed"] == 10_001
    after = client.get("/limits").json()["DailyBulkApiBatches"]["Remaining"]
    assert before - after == 2


def test_ingest_with_unknown_column_fails_and_aborted_job_keeps_records_unprocessed(
        client: Client) -> None:
    failed = _ingest(client, {"object": "Lead", "operation": "insert"}, b"Nope\nx\n")
    assert failed["state"] == "Failed"
    assert failed["errorMessage"] == "InvalidBatch : Field name not found : Nope"
    job = client.post("/jobs/ingest", json={"object": "Lead", "operation": "insert"}).json()
    client.http.put(client.base + f"/jobs/ingest/{job['id']}/batches",
                    data=b"LastName,Company\nA,B\n", headers={"Content-Type": "text/csv"})
    aborted = client.patch(f"/jobs/ingest/{job['id']}", json={"state": "Aborted"})
    assert aborted.json()["state"] == "Aborted"
    left = _csv(client.get(f"/jobs/ingest/{job['id']}/unprocessedrecords").text)
    assert left == [["LastName", "Company"], ["A", "B"]]
    bad = client.post("/jobs/ingest", json={"object": "Nothing", "operation": "insert"})
    assert bad.json()[0]["errorCode"] == "INVALIDJOB"


def test_query_job_pages_results_with_sforce_locator(client: Client) -> None:
    job = client.post("/jobs/query", json={"operation": "query",
                                           "query": "SELECT Id, Name FROM Account"}).json()
    assert job["jobType"] == "V2Query"
    info = job_in_state(client, f"/jobs/query/{job['id']}", {"JobComplete"})
    assert info["numberRecordsProcessed"] == 30
    ids: list[str] = []
    locator = None
    pages = 0
    while locator != "null":
        params = {"maxRecords": 12, **({"locator": locator} if locator else {})}
        page = client.get(f"/jobs/query/{job['id']}/results", params=params)
        rows = _csv(page.text)
        assert rows[0] == ["Id", "Name"]
        assert int(page.headers["Sforce-NumberOfRecords"]) == len(rows) - 1
        ids += [row[0] for row in rows[1:]]
        locator = page.headers["Sforce-Locator"]
        pages += 1
    assert pages == 3
    assert len(set(ids)) == 30
    malformed = client.post("/jobs/query", json={"query": "SELECT FROM"})
    assert malformed.status_code == 400
    assert malformed.json()[0]["errorCode"] == "MALFORMED_QUERY"
