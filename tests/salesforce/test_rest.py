"""RestClient against devorg: queries, Collections, CRUD, errors, limits, retries."""

from __future__ import annotations

import uuid

import pytest

from ilyd.devorg import OrgInfo
from ilyd.errors import (
    AuthError,
    RequestLimitError,
    SalesforceError,
    SalesforceUnavailableError,
)
from ilyd.metrics import REGISTRY
from ilyd.salesforce.auth import make_token_provider
from ilyd.salesforce.rest import RestClient, SaveResult
from ilyd.salesforce.soql import identifier, like_pattern, soql
from ilyd.salesforce.versions import DEFAULT_API_VERSION
from tests.helpers.devorg_process import start_devorg

from .conftest import FAST_RETRY, Admin

DATA = f"/services/data/v{DEFAULT_API_VERSION}"


def _count(metric: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(metric, labels) or 0.0


def _tag() -> str:
    return f"T{uuid.uuid4().hex[:10]}"


def _create_accounts(rest: RestClient, prefix: str, n: int) -> list[str]:
    ids: list[str] = []
    for start in range(0, n, 200):
        batch = [{"Name": f"{prefix} {i:04d}", "Website": f"https://{prefix.lower()}-{i}.example"}
                 for i in range(start, min(n, start + 200))]
        results = rest.create_collection("Account", batch)
        assert all(r.success for r in results), results
        ids.extend(r.id for r in results if r.id)
    return ids


def test_query_follows_next_records_url_across_several_pages(rest: RestClient) -> None:
    prefix = _tag()
    ids = _create_accounts(rest, prefix, 450)
    records = rest.query(
        soql("SELECT Id, Name FROM Account WHERE Name LIKE {}", like_pattern(prefix, prefix=True)),
        batch_size=200,
    )
    assert records.total_size == 450
    seen = [r["Id"] for r in records]
    assert records.pages >= 3
    assert sorted(seen) == sorted(ids)
    assert len(set(seen)) == 450


def test_count_query_reports_total_size(rest: RestClient) -> None:
    prefix = _tag()
    _create_accounts(rest, prefix, 3)
    pattern = like_pattern(prefix, prefix=True)
    result = rest.query(soql("SELECT COUNT() FROM Account WHERE Name LIKE {}", pattern))
    assert result.total_size == 3
    assert list(result) == []


def test_a_query_including_deleted_records_finds_deleted_ones(rest: RestClient) -> None:
    name = _tag()
    record_id = rest.create("Account", {"Name": name})
    rest.delete("Account", record_id)
    query = soql("SELECT Id, IsDeleted FROM Account WHERE Name = {}", name)
    assert list(rest.query(query)) == []
    rows = list(rest.query(query, include_deleted=True))
    assert [(r["Id"], r["IsDeleted"]) for r in rows] == [(record_id, True)]


def test_values_with_quotes_and_backslashes_round_trip_through_a_query(rest: RestClient) -> None:
    name = f"{_tag()} O'Brien \\ \"quoted\"\nnext line"
    record_id = rest.create("Account", {"Name": name})
    rows = list(rest.query(soql("SELECT Id, Name FROM Account WHERE Name = {}", name)))
    assert [(r["Id"], r["Name"]) for r in rows] == [(record_id, name)]


def test_sobject_crud_round_trip(rest: RestClient) -> None:
    name = _tag()
    record_id = rest.create("Lead", {"LastName": name, "Company": "Acme"})
    assert record_id.startswith("00Q")
    assert len(record_id) == 18
    rest.update("Lead", record_id, {"Website": "https://acme.example"})
    lead = rest.get("Lead", record_id, fields=["LastName", "Website"])
    assert (lead["LastName"], lead["Website"]) == (name, "https://acme.example")
    rest.delete("Lead", record_id)
    with pytest.raises(SalesforceError) as caught:
        rest.get("Lead", record_id)
    assert caught.value.status == 404
    assert caught.value.error_code in {"NOT_FOUND", "ENTITY_IS_DELETED"}


def test_salesforce_errors_carry_status_code_message_and_fields(rest: RestClient) -> None:
    with pytest.raises(SalesforceError) as malformed:
        list(rest.query("SELEC Id FROM Account"))
    assert (malformed.value.status, malformed.value.error_code) == (400, "MALFORMED_QUERY")
    with pytest.raises(SalesforceError) as invalid:
        rest.query("SELECT Id, No_Such_Field__c FROM Account")
    assert invalid.value.error_code == "INVALID_FIELD"
    assert "No_Such_Field__c" in invalid.value.message
    with pytest.raises(SalesforceError) as too_long:
        rest.create("Account", {"Name": _tag(), "Website": "x" * 300})
    assert too_long.value.error_code == "STRING_TOO_LONG"
    assert too_long.value.fields == ("Website",)


def test_collection_update_reports_each_records_outcome_in_order(rest: RestClient) -> None:
    prefix = _tag()
    good, too_long = _create_accounts(rest, prefix, 2)
    results = rest.update_collection("Account", [
        {"Id": good, "Website": "https://good.example"},
        {"Id": too_long, "Website": "x" * 300},
        {"Id": "001000000000000AAA", "Website": "https://gone.example"},
    ])
    assert [r.success for r in results] == [True, False, False]
    assert results[0] == SaveResult(id=good, success=True, errors=())
    assert results[1].errors[0].status_code == "STRING_TOO_LONG"
    assert results[1].errors[0].fields == ("Website",)
    assert results[2].errors[0].status_code in {"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY",
                                                 "MALFORMED_ID", "NOT_FOUND"}
    assert rest.get("Account", good, ["Website"])["Website"] == "https://good.example"


def test_all_or_none_collection_update_rolls_back_every_record(rest: RestClient) -> None:
    good, bad = _create_accounts(rest, _tag(), 2)
    results = rest.update_collection("Account", [
        {"Id": good, "Website": "https://changed.example"},
        {"Id": bad, "Website": "x" * 300},
    ], all_or_none=True)
    assert not any(r.success for r in results)
    assert results[0].errors[0].status_code == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert rest.get("Account", good, ["Website"])["Website"] != "https://changed.example"


def test_one_collection_update_writes_records_of_several_types_in_order(
        rest: RestClient) -> None:
    timed = _count("ilyd_sf_request_duration_seconds_count", op="collections_update")
    account, = _create_accounts(rest, _tag(), 1)
    lead = rest.create("Lead", {"LastName": "Mixed", "Company": "Mixed Co"})
    results = rest.update_mixed([
        ("Account", {"Id": account, "Website": "https://mixed-account.example"}),
        ("Lead", {"Id": lead, "Website": "https://mixed-lead.example"}),
        ("Lead", {"Id": lead, "Website": "x" * 300}),
    ])
    assert [r.success for r in results] == [True, True, False]
    assert results[1].id == lead
    assert results[2].errors[0].status_code == "STRING_TOO_LONG"
    assert rest.get("Account", account, ["Website"])["Website"] == "https://mixed-account.example"
    assert rest.get("Lead", lead, ["Website"])["Website"] == "https://mixed-lead.example"
    # Every answered call is timed, per operation.
    assert _count("ilyd_sf_request_duration_seconds_count", op="collections_update") == timed + 1


def test_a_mixed_collection_update_with_more_than_ten_type_runs_is_refused_before_calling(
        rest: RestClient) -> None:
    records = [("Account" if i % 2 else "Lead", {"Id": f"00Q{i:015d}"}) for i in range(11)]
    with pytest.raises(ValueError, match="group the records by type"):
        rest.update_mixed(records)


def test_collections_refuse_more_than_200_records_before_calling(rest: RestClient) -> None:
    with pytest.raises(ValueError, match="200"):
        rest.update_collection("Account", [{"Id": f"001{i:015d}"} for i in range(201)])
    with pytest.raises(ValueError, match="no Id"):
        rest.update_collection("Account", [{"Website": "https://x.example"}])


def test_describe_is_cached_until_refreshed(rest: RestClient) -> None:
    before = _count("ilyd_sf_requests_total", op="describe")
    first = rest.describe("Account")
    assert rest.describe("account") is first
    assert _count("ilyd_sf_requests_total", op="describe") - before == 1
    assert {"Id", "Name", "Website"} <= {f["name"] for f in first["fields"]}
    refreshed = rest.describe("Account", refresh=True)
    assert _count("ilyd_sf_requests_total", op="describe") - before == 2
    assert rest.describe("Account") is refreshed  # a refresh replaces the cached one


def test_a_describe_only_ever_refreshed_is_not_kept(rest: RestClient) -> None:
    before = _count("ilyd_sf_requests_total", op="describe")
    rest.describe("Lead", refresh=True)
    rest.describe("Lead", refresh=True)
    rest.describe("Lead")  # nothing cached: fetched (and kept from now on)
    rest.describe("Lead")
    assert _count("ilyd_sf_requests_total", op="describe") - before == 3


def test_api_usage_is_read_from_every_response_and_exported(
    org: OrgInfo, rest: RestClient
) -> None:
    assert rest.api_usage is None
    list(rest.query("SELECT Id FROM Organization"))
    first = rest.api_usage
    assert first is not None
    assert (first.max, first.used >= 1) == (15000, True)
    list(rest.query("SELECT Id FROM Organization"))
    assert rest.api_usage.used == first.used + 1
    assert REGISTRY.get_sample_value("ilyd_sf_api_usage_ratio", {"org": org.name}) == (
        pytest.approx((first.used + 1) / 15000)
    )
    limits = rest.limits()
    assert limits["DailyApiRequests"]["Max"] == 15000


def test_request_limit_exceeded_raises_request_limit_error_without_retrying(
    rest: RestClient, admin: Admin
) -> None:
    list(rest.query("SELECT Id FROM Organization"))
    admin.settings(api_limit=rest.api_usage.used)
    retries = _count("ilyd_sf_request_retries_total", op="query")
    with pytest.raises(RequestLimitError) as caught:
        rest.query("SELECT Id FROM Organization")
    assert (caught.value.status, caught.value.error_code) == (403, "REQUEST_LIMIT_EXCEEDED")
    assert "TotalRequests Limit exceeded" in str(caught.value)
    assert _count("ilyd_sf_request_retries_total", op="query") == retries


def test_server_errors_on_reads_are_retried_with_backoff(rest: RestClient, admin: Admin) -> None:
    list(rest.query("SELECT Id FROM Organization"))
    retries = _count("ilyd_sf_request_retries_total", op="query")
    admin.fault(kind="status", status=503, count=2, path_prefix=f"{DATA}/query")
    rows = list(rest.query("SELECT Id FROM Organization"))
    assert len(rows) == 1
    assert _count("ilyd_sf_request_retries_total", op="query") - retries == 2


def test_server_errors_that_outlast_the_retries_raise_unavailable(
    rest: RestClient, admin: Admin
) -> None:
    list(rest.query("SELECT Id FROM Organization"))
    admin.fault(kind="status", status=500, count=FAST_RETRY.attempts, path_prefix=f"{DATA}/query")
    with pytest.raises(SalesforceUnavailableError) as caught:
        rest.query("SELECT Id FROM Organization")
    assert caught.value.status == 500


def test_a_create_is_never_resent_after_a_server_error(rest: RestClient, admin: Admin) -> None:
    list(rest.query("SELECT Id FROM Organization"))
    retries = _count("ilyd_sf_request_retries_total", op="create")
    admin.fault(kind="status", status=503, count=1, path_prefix=f"{DATA}/sobjects/Account")
    with pytest.raises(SalesforceUnavailableError):
        rest.create("Account", {"Name": _tag()})
    assert _count("ilyd_sf_request_retries_total", op="create") == retries


def test_dropped_connections_on_reads_are_retried(rest: RestClient, admin: Admin) -> None:
    list(rest.query("SELECT Id FROM Organization"))
    admin.fault(kind="drop", count=1, path_prefix=f"{DATA}/query")
    assert len(list(rest.query("SELECT Id FROM Organization"))) == 1


def test_tls_with_the_private_ca_verifies_and_without_it_fails() -> None:
    with start_devorg(tls=True) as server:
        info = server.orgs[0]
        assert server.url.startswith("https://")
        assert server.ca_file is not None
        common = {"login_url": info.login_url, "client_id": info.client_id,
                  "client_secret": info.client_secret, "refresh_token": info.refresh_token,
                  "org": info.name, "retry": FAST_RETRY}
        trusted = make_token_provider("refresh_token", ca_file=server.ca_file, **common)
        client = RestClient(info.name, trusted, ca_file=server.ca_file, retry=FAST_RETRY)
        assert [r["Id"] for r in client.query("SELECT Id FROM Organization")] == [info.org_id]
        untrusted = make_token_provider("refresh_token", **common)
        with pytest.raises(SalesforceError, match="ca_file") as caught:
            untrusted.token()
        assert not isinstance(caught.value, SalesforceUnavailableError)
        # The data calls (kept connections, not requests) verify the same way.
        unverified = RestClient(info.name, trusted, retry=FAST_RETRY)
        with pytest.raises(SalesforceError, match="ca_file") as refused:
            unverified.update_collection("Account", [{"Id": info.org_id, "Name": "x"}])
        assert not isinstance(refused.value, SalesforceUnavailableError)
        client.close()
        unverified.close()


def test_new_custom_field_is_invisible_until_field_level_security_is_granted(
    org: OrgInfo, rest: RestClient
) -> None:
    name = f"Ily_{_tag()}"
    field = f"{name}__c"
    field_id = rest.create("CustomField", {
        "FullName": f"Account.{field}",
        "Metadata": {"label": "Ily test", "type": "Text", "length": 100},
    }, tooling=True)
    created = list(rest.query(soql(
        "SELECT Id, DeveloperName FROM CustomField WHERE DeveloperName = {}", name),
        tooling=True))
    assert [r["Id"] for r in created] == [field_id]
    account = rest.create("Account", {"Name": _tag()})

    assert field not in {f["name"] for f in rest.describe("Account", refresh=True)["fields"]}
    with pytest.raises(SalesforceError) as unreadable:
        rest.query(soql("SELECT Id, {f} FROM Account", f=identifier(field)))
    assert unreadable.value.error_code == "INVALID_FIELD"
    with pytest.raises(SalesforceError) as unwritable:
        rest.update("Account", account, {field: "x"})
    assert unwritable.value.error_code in {"INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE"}

    permission_set = rest.create("PermissionSet", {"Name": name, "Label": name})
    rest.create("FieldPermissions", {
        "ParentId": permission_set, "SobjectType": "Account", "Field": f"Account.{field}",
        "PermissionsRead": True, "PermissionsEdit": True,
    })
    rest.create("PermissionSetAssignment",
                {"AssigneeId": org.user_id, "PermissionSetId": permission_set})

    described = {f["name"]: f for f in rest.describe("Account", refresh=True)["fields"]}
    assert described[field]["updateable"] is True
    rest.update("Account", account, {field: "granted"})
    assert rest.get("Account", account, [field])[field] == "granted"


def test_a_session_refused_again_after_refresh_is_an_auth_error_not_a_loop(
    rest: RestClient, admin: Admin
) -> None:
    list(rest.query("SELECT Id FROM Organization"))
    tokens_before = _count("ilyd_sf_requests_total", op="token")
    admin.fault(kind="status", status=401, count=2, path_prefix=f"{DATA}/query",
                error_code="INVALID_SESSION_ID", message="Session expired or invalid")
    with pytest.raises(AuthError) as caught:
        rest.query("SELECT Id FROM Organization")
    assert caught.value.error_code == "INVALID_SESSION_ID"
    assert _count("ilyd_sf_requests_total", op="token") - tokens_before == 1


def test_like_patterns_match_wildcard_characters_literally(rest: RestClient) -> None:
    prefix = _tag()
    literal = rest.create("Account", {"Name": f"{prefix} 50%_off"})
    rest.create("Account", {"Name": f"{prefix} 50xyoff"})
    rows = rest.query(soql("SELECT Id FROM Account WHERE Name LIKE {}",
                           like_pattern(f"{prefix} 50%_", prefix=True)))
    assert [r["Id"] for r in rows] == [literal]
