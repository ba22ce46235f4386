"""The overwrite policy `unless_edited` (the default) against devorg: a person's edit of an
Ily field, made through devorg's admin API as the org's human user, survives the real-time
writer and the resync (REST and Bulk 2.0) until an admin clears the value or releases it."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from ilyd import metrics
from ilyd.actors.context import OrgSecrets
from ilyd.config import OrgConfig, load_config
from ilyd.devorg import DevOrg, OrgInfo
from ilyd.pipeline.runtime import OrgPipeline
from ilyd.provision.grant import grant_profiles
from ilyd.resync.checkpoint import ResyncStore
from ilyd.resync.engine import Resync, ResyncRequest, ResyncSettings
from ilyd.salesforce.bulk import PollPolicy
from ilyd.salesforce.connect import make_org_token_provider
from ilyd.salesforce.http import RetryPolicy
from ilyd.salesforce.rest import RestClient
from ilyd.store import Database
from ilyd.store.field_state import FieldStateStore
from tests.pipeline.conftest import SalesforceUser, wait_until, write_config
from tests.pipeline.test_writer import entry, run_once

INDUSTRY = "Ily_Industry__c"
NAME = "Ily_Company_Name__c"
REST = ResyncSettings(rest_threshold=10_000, poll=PollPolicy(initial=0.02, factor=1.5,
                                                             max_interval=0.1))
BULK = ResyncSettings(rest_threshold=0, page_size=500, poll=PollPolicy(
    initial=0.02, factor=1.5, max_interval=0.1), lock_retry_delay=0.02)


@pytest.fixture(autouse=True)
def _people_edit_ily_fields(pipeline: OrgPipeline) -> None:
    """The org's human user (Standard User profile) may edit the two fields tested."""
    grant_profiles(pipeline.rest, ["Standard User"],
                   [f"Account.{INDUSTRY}", f"Account.{NAME}"], edit=True)


def resync(pipeline: OrgPipeline, settings: ResyncSettings) -> dict[str, object]:
    engine = Resync(pipeline.org, pipeline.rest, pipeline.provider,
                    store=ResyncStore(pipeline.database), hashes=pipeline.hashes,
                    settings=settings, inbox=pipeline.inbox, export_metrics=False,
                    integration_user_id=pipeline.rest.token.user_id,
                    enrich=pipeline.config.enrich)
    engine.begin(ResyncRequest(("Account",)))
    progress = engine.run().snapshot()
    assert progress["phase"] == "done", progress
    return progress


def protected_count(pipeline: OrgPipeline) -> float:
    return metrics.FIELDS_PROTECTED.labels(org=pipeline.org, sobject="Account",
                                           field=INDUSTRY)._value.get()


def ilyd_changed(user: SalesforceUser, info: OrgInfo, record: str, field: str) -> int:
    return sum(1 for h in user.history(record)
               if h["user_id"] == info.user_id and field in (h.get("changed_fields") or ()))


@pytest.mark.parametrize("settings", [REST, BULK], ids=["rest", "bulk"])
def test_a_persons_edit_survives_real_time_and_resync_until_released(
        pipeline: OrgPipeline, user: SalesforceUser, info: OrgInfo,
        settings: ResyncSettings) -> None:
    account = user.create("Account", Name="Acme", Website="acme.example")
    run_once(pipeline, [entry("Account", account, Website="acme.example")])
    assert user.record(account)[INDUSTRY] == "Manufacturing"
    user.update("Account", account, **{INDUSTRY: "Curated by Sales"})
    before = protected_count(pipeline)

    # The sample says Globex is in Energy: the company name follows, the industry not.
    user.update("Account", account, Website="https://globex.test")
    run_once(pipeline, [entry("Account", account, Website="https://globex.test")])
    record = user.record(account)
    assert record[NAME] == "Globex Corporation"
    assert record[INDUSTRY] == "Curated by Sales"
    assert protected_count(pipeline) == before + 1
    assert ilyd_changed(user, info, account, INDUSTRY) == 1

    # A resync reads the record (Industry differs from the outcome) and leaves it alone.
    resync(pipeline, settings)
    assert user.record(account)[INDUSTRY] == "Curated by Sales"
    assert ilyd_changed(user, info, account, INDUSTRY) == 1

    # The admin releases the field: the next resync writes ilyd's value again.
    fields = FieldStateStore(pipeline.database)
    assert fields.release(pipeline.org, account[:15]) == [INDUSTRY]
    resync(pipeline, settings)
    assert user.record(account)[INDUSTRY] == "Energy"


def test_a_cleared_value_is_ilyds_again_and_untouched_fields_keep_following(
        pipeline: OrgPipeline, user: SalesforceUser) -> None:
    account = user.create("Account", Name="Acme", Website="acme.example")
    run_once(pipeline, [entry("Account", account, Website="acme.example")])
    user.update("Account", account, **{INDUSTRY: "Curated by Sales"})
    user.update("Account", account, Website="globex.test")
    run_once(pipeline, [entry("Account", account, Website="globex.test")])
    assert user.record(account)[INDUSTRY] == "Curated by Sales"
    user.update("Account", account, **{INDUSTRY: None})
    resync(pipeline, REST)
    assert user.record(account)[INDUSTRY] == "Energy"
    # Now ilyd's value again: a later change of company rewrites it.
    user.update("Account", account, Website="acme.example")
    run_once(pipeline, [entry("Account", account, Website="acme.example")])
    assert user.record(account)[INDUSTRY] == "Manufacturing"


def test_always_overwrites_a_persons_edit_and_if_blank_holds_in_the_resync_too(
        tmp_path: Path, dev: DevOrg, info: OrgInfo, user: SalesforceUser,
        pipeline: OrgPipeline) -> None:
    (tmp_path / "other").mkdir()
    path = write_config(tmp_path / "other", dev, [info], org_extra=(
        f'[org.enrich]\noverwrite = {{ {INDUSTRY} = "always", {NAME} = "if_blank" }}\n'))
    config = load_config(path).orgs[0]
    pipeline.config = config
    account = user.create("Account", Name="Acme", Website="acme.example",
                          **{NAME: "Acme (our name)"})
    run_once(pipeline, [entry("Account", account, Website="acme.example")])
    user.update("Account", account, **{INDUSTRY: "Curated by Sales"})
    resync(pipeline, REST)
    record = user.record(account)
    assert record[INDUSTRY] == "Manufacturing"
    assert record[NAME] == "Acme (our name)"


def test_values_of_a_write_whose_answer_was_lost_are_still_ilyds_after_a_persons_edit(
        provisioned: OrgConfig, database: Database, user: SalesforceUser, info: OrgInfo,
        dev: DevOrg) -> None:
    secrets = OrgSecrets.read(provisioned)
    # A client that gives up on an answer after 1 s, once: Salesforce may still commit.
    rest = RestClient(provisioned.name, make_org_token_provider(provisioned, secrets),
                      api_version=provisioned.api_version, timeout=1.0,
                      retry=RetryPolicy(attempts=1))
    impatient = OrgPipeline(provisioned, secrets, database, rest=rest,
                            probe_interval=0.2).acquire()
    try:
        account = user.create("Account", Name="Acme", Website="acme.example")
        run_once(impatient, [entry("Account", account, Website="acme.example")])
        assert user.record(account)[INDUSTRY] == "Manufacturing"
        admin = requests.Session()
        admin.post(f"{dev.admin}/faults", json={
            "kind": "latency", "path_prefix": "/services/data/", "method": "PATCH",
            "org": info.name, "delay": 2.0}, timeout=10).raise_for_status()
        try:
            user.update("Account", account, Website="globex.test")
            _, report = run_once(impatient, [entry("Account", account, Website="globex.test")])
            assert report.written == 0  # no answer: the outcome is unknown
            wait_until(lambda: user.record(account)[INDUSTRY] == "Energy", timeout=10,
                       what="the unanswered write landing")
        finally:
            admin.delete(f"{dev.admin}/faults", timeout=10).raise_for_status()
        # A person edits the record's other fields before ilyd tries again.
        user.update("Account", account, Website="initech.example")
        run_once(impatient, [entry("Account", account, Website="initech.example")])
        record = user.record(account)
        assert (record[NAME], record[INDUSTRY]) == ("Initech", "Software")
    finally:
        impatient.release()
