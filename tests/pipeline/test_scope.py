"""`[org.scope]` against devorg: records outside an object's SOQL condition are never
written — by the real-time writer (checked in its one batched read, no call per record),
by a resync, or by a running daemon — and a condition Salesforce refuses puts the org in
config_error with Salesforce's message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ilyd.config import load_config
from ilyd.devorg import DevOrg, OrgInfo
from ilyd.pipeline.runtime import OrgPipeline
from ilyd.pipeline.writer import Writer
from ilyd.resync.checkpoint import ResyncStore
from ilyd.resync.engine import Resync, ResyncRequest
from tests.pipeline.conftest import Daemon, SalesforceUser, wait_until, write_config
from tests.pipeline.test_policy import BULK, REST
from tests.pipeline.test_writer import entry, run_once

SCOPE = (("Account", "BillingCountry IN ('US','CA') AND Type != 'Competitor'"),)
NAME = "Ily_Company_Name__c"


def scoped_writer(pipeline: OrgPipeline) -> Writer:
    return Writer(pipeline.org, pipeline.rest, pipeline.inbox, pipeline.state,
                  pipeline.hashes, enrich=pipeline.config.enrich, budget=pipeline.budget,
                  scope=SCOPE)


def test_the_writer_leaves_records_outside_the_scope_in_its_one_read(
        pipeline: OrgPipeline, user: SalesforceUser) -> None:
    inside = user.create("Account", Name="In", Website="acme.example", BillingCountry="US")
    abroad = user.create("Account", Name="Out", Website="globex.test", BillingCountry="FR")
    rival = user.create("Account", Name="Rival", Website="acme.example",
                        BillingCountry="CA", Type="Competitor")
    writer = scoped_writer(pipeline)
    writer.fields.of("Account")  # the describe a new writer makes once
    calls = user.calls()
    _, report = run_once(pipeline, [entry("Account", inside, Website="acme.example"),
                                    entry("Account", abroad, Website="globex.test"),
                                    entry("Account", rival, Website="acme.example")], writer)
    assert user.record(inside)[NAME] == "Acme Corporation"
    assert user.record(abroad)[NAME] is None
    assert user.record(rival)[NAME] is None
    assert (report.written, report.skipped, report.calls) == (1, 2, 1)
    # One read (policies and scope together) and one Collections call for three records.
    assert user.calls() - calls == 2
    assert pipeline.inbox.depth(pipeline.org) == 0


@pytest.mark.parametrize("settings", [REST, BULK], ids=["rest", "bulk"])
def test_a_resync_reads_and_writes_only_records_in_scope(
        pipeline: OrgPipeline, user: SalesforceUser, settings: object) -> None:
    inside = user.create("Account", Name="In", Website="acme.example", BillingCountry="CA")
    outside = user.create("Account", Name="Out", Website="globex.test", BillingCountry="DE")
    engine = Resync(pipeline.org, pipeline.rest, pipeline.provider,
                    store=ResyncStore(pipeline.database), hashes=pipeline.hashes,
                    settings=settings, inbox=pipeline.inbox,  # type: ignore[arg-type]
                    export_metrics=False, integration_user_id=pipeline.rest.token.user_id,
                    scope=SCOPE)
    engine.begin(ResyncRequest(("Account",)))
    progress = engine.run().snapshot()
    assert progress["phase"] == "done", progress
    assert progress["read"] == 1
    assert user.record(inside)[NAME] == "Acme Corporation"
    assert user.record(outside)[NAME] is None


def scoped_daemon(tmp_path: Path, dev: DevOrg, info: OrgInfo, condition: str) -> Daemon:
    path = write_config(tmp_path, dev, [info], org_extra=f'[org.scope]\nAccount = "{condition}"\n')
    config = load_config(path)
    assert not config.org_errors, config.org_errors
    return Daemon(path)


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.stop()


def test_a_running_daemon_enriches_in_real_time_only_what_is_in_scope(
        provisioned: object, tmp_path: Path, dev: DevOrg, info: OrgInfo,
        user: SalesforceUser, daemons: list[Daemon]) -> None:
    daemon = scoped_daemon(tmp_path, dev, info, "BillingCountry = 'US'")
    daemons.append(daemon)
    daemon.start()
    wait_until(lambda: daemon.org().get("state") == "running", timeout=30,
               what="the org running")
    outside = user.create("Account", Name="Out", Website="globex.test", BillingCountry="FR")
    inside = user.create("Account", Name="In", Website="acme.example", BillingCountry="US")
    wait_until(lambda: user.record(inside)[NAME] == "Acme Corporation", timeout=30,
               what="the record in scope enriched")
    # Records are written in arrival order: the one outside was decided before.
    wait_until(lambda: daemon.org().get("detail", {}).get("inbox") in (0, None),
               timeout=30, what="the inbox drained")
    assert user.record(outside)[NAME] is None
    assert user.record(outside)["Ily_Match_Status__c"] is None


def test_a_condition_salesforce_refuses_puts_the_org_in_config_error_with_its_message(
        provisioned: object, tmp_path: Path, dev: DevOrg, info: OrgInfo,
        daemons: list[Daemon]) -> None:
    daemon = scoped_daemon(tmp_path, dev, info, "No_Such_Field__c = 'x'")
    daemons.append(daemon)
    daemon.start()
    org = wait_until(lambda: (o := daemon.org()).get("state") not in (None, "starting")
                     and o, timeout=30, what="the org past starting")
    assert org["state"] == "config_error", org
    assert "No_Such_Field__c" in org["last_error"]
    assert "[org.scope] Account" in org["last_error"]


def test_scope_keys_are_checked_with_the_config(tmp_path: Path, dev: DevOrg,
                                                info: OrgInfo) -> None:
    path = write_config(tmp_path, dev, [info], org_extra='[org.scope]\nContact = "x"\n')
    errors = load_config(path).org_errors
    assert errors
    assert "scope.Contact: must be one of Account, Lead" in errors[0].problems[0]
