"""The generic HTTP provider against a real vendor-like API on loopback, status by status."""

from __future__ import annotations

import threading
from dataclasses import replace
from email.utils import formatdate

import pytest

from ilyd.enrich.http_provider import (
    HttpBatchSettings,
    HttpProvider,
    HttpSettings,
    parse_retry_after,
)
from ilyd.enrich.provider import Lookup, Provider
from ilyd.enrich.provider_health import HealthState
from ilyd.errors import ConfigError, ProviderError
from ilyd.metrics import REGISTRY

SECRET = "sk_live_do_not_log_me"

COMPANY = {
    "name": "Acme Corp",
    "category": {"industry": "Manufacturing"},
    "metrics": {"employees": 240, "employeesRange": "201-500"},
    "geo": {"countryCode": "US"},
    "tech": [{"name": "Salesforce"}, {"name": "Slack"}],
}

FIELDS = {
    "Ily_Company_Name__c": "name",
    "Ily_Industry__c": "category.industry",
    "Ily_Employee_Count__c": "metrics.employees",
    "Ily_Employee_Range__c": "metrics.employeesRange",
    "Ily_Country__c": "geo.countryCode",
    "Ily_Technologies__c": "tech[*].name",
    "Ily_SaaS_Products__c": "tech[0].name",
}


def settings(base: str, **overrides: object) -> HttpSettings:
    """Fast-retrying settings for the stub at `base`."""
    values: dict[str, object] = {
        "name": "vendor",
        "url": base + "/v2/companies/find/{domain}",
        "fields": FIELDS,
        "auth_header": "Authorization",
        "auth_prefix": "Bearer ",
        "secret": SECRET,
        "timeout_seconds": 2.0,
        "requests_per_second": 1000.0,
        "max_attempts": 3,
        "backoff_initial_seconds": 0.01,
        "backoff_max_seconds": 0.02,
    }
    values.update(overrides)
    return HttpSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def provider(http_stub):
    p = HttpProvider(settings(http_stub.base))
    yield p
    p.close()


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_provider_satisfies_the_provider_contract(provider):
    assert isinstance(provider, Provider)


def test_200_maps_dotted_paths_and_list_indexes_to_ily_fields(http_stub, provider):
    http_stub.route("/v2/companies/find/acme.test", http_stub.Reply(200, COMPANY))
    lookup = provider.lookup("acme.test")
    assert lookup == Lookup(
        provider="vendor", domain="acme.test", found=True,
        values={
            "Ily_Company_Name__c": "Acme Corp",
            "Ily_Industry__c": "Manufacturing",
            "Ily_Employee_Count__c": 240,
            "Ily_Employee_Range__c": "201-500",
            "Ily_Country__c": "US",
            "Ily_Technologies__c": "Salesforce; Slack",
            "Ily_SaaS_Products__c": "Salesforce",
        },
    )


def test_auth_header_carries_the_secret_with_its_prefix(http_stub, provider):
    http_stub.route("/v2/companies/find/acme.test", http_stub.Reply(200, COMPANY))
    provider.lookup("acme.test")
    assert http_stub.requests[0].headers["Authorization"] == "Bearer " + SECRET


def test_auth_query_parameter_carries_the_secret(http_stub):
    http_stub.route("/v2/companies/find/acme.test", http_stub.Reply(200, COMPANY))
    p = HttpProvider(settings(http_stub.base, auth_header=None, auth_query="KEY"))
    p.lookup("acme.test")
    p.close()
    seen = http_stub.requests[0]
    assert seen.query == {"KEY": [SECRET]}
    assert "Authorization" not in seen.headers


def test_domain_is_url_encoded_into_the_template(http_stub, provider):
    http_stub.route("/v2/companies/find/a%2Fb.test", http_stub.Reply(200, COMPANY))
    assert provider.lookup("a/b.test").found
    assert http_stub.hits("/v2/companies/find/a%2Fb.test") == 1


def test_post_sends_the_rendered_json_body_and_reads_the_result_path(http_stub):
    http_stub.route("/enrich", http_stub.Reply(200, {"data": {"company": COMPANY}}))
    p = HttpProvider(settings(
        http_stub.base, url=http_stub.base + "/enrich", method="POST",
        body={"companies": {"domains": ["{domain}"]}, "fields": ["firmographics"]},
        result_path="data.company",
    ))
    lookup = p.lookup("acme.test")
    p.close()
    assert http_stub.requests[0].body == {
        "companies": {"domains": ["acme.test"]}, "fields": ["firmographics"],
    }
    assert lookup.values["Ily_Company_Name__c"] == "Acme Corp"


def test_404_is_a_definite_not_found(http_stub, provider):
    http_stub.route("/v2/companies/find/nobody.test", http_stub.Reply(404, {"error": "nf"}))
    lookup = provider.lookup("nobody.test")
    assert (lookup.found, lookup.values, lookup.invalid) == (False, {}, False)


def test_200_without_any_mapped_value_is_not_found(http_stub, provider):
    http_stub.route("/v2/companies/find/empty.test", http_stub.Reply(200, {"other": 1}))
    assert provider.lookup("empty.test").found is False


def test_202_is_a_retryable_queued_error(http_stub, provider):
    http_stub.route("/v2/companies/find/new.test",
                    http_stub.Reply(202, {"status": "queued"}, {"Retry-After": "30"}))
    with pytest.raises(ProviderError) as err:
        provider.lookup("new.test")
    assert (err.value.retryable, err.value.reason, err.value.retry_after) == (True, "queued", 30)


@pytest.mark.parametrize("word", ["queued", "Pending"])
def test_body_status_queued_or_pending_is_retryable(http_stub, provider, word):
    http_stub.route("/v2/companies/find/new.test", http_stub.Reply(200, {"status": word}))
    with pytest.raises(ProviderError) as err:
        provider.lookup("new.test")
    assert (err.value.retryable, err.value.reason) == (True, "queued")


def test_429_exposes_retry_after_seconds_and_pauses_every_caller(http_stub, provider):
    http_stub.route("/v2/companies/find/a.test", http_stub.Reply(429, {}, {"Retry-After": "120"}))
    http_stub.route("/v2/companies/find/b.test", http_stub.Reply(200, COMPANY))
    with pytest.raises(ProviderError) as first:
        provider.lookup("a.test")
    assert (first.value.retryable, first.value.reason) == (True, "rate_limited")
    assert first.value.retry_after == 120
    with pytest.raises(ProviderError) as second:
        provider.lookup("b.test")
    assert second.value.reason == "rate_limited"
    assert 0 < second.value.retry_after <= 120
    assert http_stub.hits("/v2/companies/find/b.test") == 0


def test_429_with_an_http_date_retry_after(http_stub, provider):
    import time
    when = formatdate(time.time() + 90, usegmt=True)
    http_stub.route("/v2/companies/find/a.test", http_stub.Reply(429, {}, {"Retry-After": when}))
    with pytest.raises(ProviderError) as err:
        provider.lookup("a.test")
    assert 80 < err.value.retry_after <= 90


def test_retry_after_parsing_accepts_seconds_dates_and_rejects_junk():
    assert parse_retry_after("7") == 7
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_5xx_is_retried_with_backoff_then_answers(http_stub, provider):
    path = "/v2/companies/find/flaky.test"
    http_stub.route(path, http_stub.Reply(503), http_stub.Reply(500), http_stub.Reply(200, COMPANY))
    assert provider.lookup("flaky.test").found
    assert http_stub.hits(path) == 3


def test_5xx_beyond_the_attempt_budget_is_a_retryable_error(http_stub, provider):
    path = "/v2/companies/find/down.test"
    http_stub.route(path, http_stub.Reply(502))
    before = sample("ilyd_provider_failures_total", {"provider": "vendor", "reason": "server"})
    with pytest.raises(ProviderError) as err:
        provider.lookup("down.test")
    assert (err.value.retryable, err.value.reason) == (True, "server")
    assert http_stub.hits(path) == 3
    after = sample("ilyd_provider_failures_total", {"provider": "vendor", "reason": "server"})
    assert after - before == 3


def test_a_timeout_is_retried_then_retryable(http_stub):
    path = "/v2/companies/find/slow.test"
    http_stub.route(path, http_stub.Reply(200, COMPANY, delay=5.0))
    p = HttpProvider(settings(http_stub.base, timeout_seconds=0.2, max_attempts=2))
    with pytest.raises(ProviderError) as err:
        p.lookup("slow.test")
    p.close()
    assert (err.value.retryable, err.value.reason) == (True, "timeout")
    assert http_stub.hits(path) == 2


def test_connection_refused_is_retryable(http_stub):
    base = http_stub.base
    http_stub.stop()
    p = HttpProvider(settings(base, max_attempts=2))
    with pytest.raises(ProviderError) as err:
        p.lookup("acme.test")
    assert (err.value.retryable, err.value.reason) == (True, "connection")
    assert SECRET not in str(err.value)


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_mark_the_provider_failing_and_stop_calling(http_stub, provider, status):
    path = "/v2/companies/find/acme.test"
    http_stub.route(path, http_stub.Reply(status, {"error": "bad key"}))
    with pytest.raises(ProviderError) as err:
        provider.lookup("acme.test")
    assert err.value.retryable is False
    assert provider.health.state is HealthState.FAILING
    assert f"HTTP {status}" in provider.health.message
    assert "ilyd ctl restart ORG" in provider.health.message
    assert SECRET not in provider.health.message
    with pytest.raises(ProviderError) as again:
        provider.lookup("acme.test")
    assert again.value.retryable is False
    assert http_stub.hits(path) == 1


def test_a_healthy_provider_reports_ok(provider):
    assert provider.health.ok


def test_other_4xx_is_a_non_retryable_rejection_without_failing_the_provider(http_stub, provider):
    http_stub.route("/v2/companies/find/bad.test", http_stub.Reply(422, {"error": "domain"}))
    with pytest.raises(ProviderError) as err:
        provider.lookup("bad.test")
    assert (err.value.retryable, err.value.reason) == (False, "rejected")
    assert provider.health.ok


def test_a_200_that_is_not_json_is_a_clear_error(http_stub, provider):
    http_stub.route("/v2/companies/find/html.test", http_stub.Reply(200, "<html>hi</html>"))
    with pytest.raises(ProviderError) as err:
        provider.lookup("html.test")
    assert err.value.reason == "bad_response"


def test_requests_are_counted_per_provider(http_stub, provider):
    http_stub.route("/v2/companies/find/acme.test", http_stub.Reply(200, COMPANY))
    before = sample("ilyd_provider_requests_total", {"provider": "vendor"})
    provider.lookup("acme.test")
    provider.lookup("acme.test")
    assert sample("ilyd_provider_requests_total", {"provider": "vendor"}) - before == 2
    assert sample("ilyd_provider_request_duration_seconds_count", {"provider": "vendor"}) >= 2


def test_concurrency_never_exceeds_max_concurrency(http_stub):
    path = "/v2/companies/find/acme.test"
    http_stub.route(path, http_stub.Reply(200, COMPANY, delay=0.05))
    p = HttpProvider(settings(http_stub.base, max_concurrency=2))
    active = 0
    peak = 0
    lock = threading.Lock()
    original = p._session.request

    def counting(*args, **kwargs):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        try:
            return original(*args, **kwargs)
        finally:
            with lock:
                active -= 1

    p._session.request = counting
    threads = [threading.Thread(target=p.lookup, args=("acme.test",)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    p.close()
    assert http_stub.hits(path) == 8
    assert peak == 2


def test_lookup_many_without_batch_endpoint_returns_each_outcome(http_stub, provider):
    http_stub.route("/v2/companies/find/acme.test", http_stub.Reply(200, COMPANY))
    http_stub.route("/v2/companies/find/bad.test", http_stub.Reply(400))
    results = provider.lookup_many(["acme.test", "nobody.test", "bad.test"])
    assert results["acme.test"].found
    assert results["nobody.test"].found is False
    assert isinstance(results["bad.test"], ProviderError)


def test_batch_endpoint_splits_into_chunks_and_pairs_results_by_domain(http_stub):
    http_stub.route("/v22/api.json", http_stub.Reply(200, {"Results": [
        {"Lookup": "https://www.acme.test/", "Result": COMPANY},
        {"Lookup": "globex.test", "Result": dict(COMPANY, name="Globex")},
    ]}))
    batch = HttpBatchSettings(
        url=http_stub.base + "/v22/api.json?LOOKUP={domains}", max_domains=2,
        results_path="Results", match_path="Lookup",
    )
    p = HttpProvider(settings(http_stub.base, batch=batch, result_path="Result",
                              auth_header=None, auth_query="KEY"))
    results = p.lookup_many(["acme.test", "globex.test", "initech.test"])
    p.close()
    assert [r.query["LOOKUP"] for r in http_stub.requests] == [
        ["acme.test,globex.test"], ["initech.test"],
    ]
    assert results["acme.test"].values["Ily_Company_Name__c"] == "Acme Corp"
    assert results["globex.test"].values["Ily_Company_Name__c"] == "Globex"
    assert results["initech.test"].found is False


def test_batch_post_body_carries_the_domain_list_and_errors_apply_to_the_chunk(http_stub):
    http_stub.route("/enrich", http_stub.Reply(503))
    batch = HttpBatchSettings(url=http_stub.base + "/enrich", method="POST",
                              body={"companies": {"domains": "{domains}"}}, max_domains=25)
    p = HttpProvider(settings(http_stub.base, batch=batch, max_attempts=1))
    results = p.lookup_many(["acme.test", "globex.test"])
    p.close()
    assert http_stub.requests[0].body == {"companies": {"domains": ["acme.test", "globex.test"]}}
    assert all(isinstance(r, ProviderError) and r.retryable for r in results.values())


def test_bad_settings_report_every_problem(http_stub):
    with pytest.raises(ConfigError) as err:
        HttpProvider(settings(http_stub.base, method="PUT", auth_query="KEY", fields={}))
    assert len(err.value.problems) == 3


def test_a_malformed_response_path_fails_at_construction(http_stub):
    with pytest.raises(ConfigError, match="tech"):
        HttpProvider(settings(http_stub.base, fields={"Ily_Technologies__c": "tech[0"}))


def test_settings_repr_never_shows_the_secret(http_stub):
    assert SECRET not in repr(settings(http_stub.base))
    assert SECRET not in repr(replace(settings(http_stub.base), name="x"))
