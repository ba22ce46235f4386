"""`unless_edited` in a running daemon (`ilyd run` as a child process) against devorg: a
person's edit of an Ily field survives the real-time path (PushTopic event, enrichment,
write) and `ilyd ctl resync`, until `ilyd ctl release` gives the field back to ilyd."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ilyd.control.client import ControlClient
from ilyd.pipeline.runtime import OrgPipeline
from ilyd.provision.grant import grant_profiles
from tests.pipeline.conftest import Daemon, SalesforceUser, wait_until

INDUSTRY = "Ily_Industry__c"


@pytest.fixture
def daemon(pipeline: OrgPipeline, config_path: Path) -> Iterator[Daemon]:
    # The org's human user (Standard User profile) may edit the Industry field.
    grant_profiles(pipeline.rest, ["Standard User"], [f"Account.{INDUSTRY}"], edit=True)
    running = Daemon(config_path)
    running.start()
    yield running
    running.stop()



def test_a_persons_edit_survives_the_real_time_path_and_a_resync_until_released(
        daemon: Daemon, user: SalesforceUser) -> None:
    wait_until(lambda: daemon.org().get("state") == "running", timeout=30,
               what="the org running")
    account = user.create("Account", Name="A", Website="acme.example")
    wait_until(lambda: user.record(account)[INDUSTRY] == "Manufacturing", timeout=30,
               what="first enrichment")
    user.update("Account", account, **{INDUSTRY: "Curated by Sales"})
    user.update("Account", account, Website="https://globex.test")
    wait_until(lambda: user.record(account)["Ily_Company_Name__c"] == "Globex Corporation",
               timeout=30, what="re-enrichment after the Website edit")
    assert user.record(account)[INDUSTRY] == "Curated by Sales"

    resynced = ControlClient(daemon.socket, timeout=120).call(
        "resync", {"org": "org0", "objects": ["Account"], "wait": True})
    assert resynced["phase"] == "done", resynced
    assert user.record(account)[INDUSTRY] == "Curated by Sales"

    assert "released Ily_Industry__c" in daemon.ctl("release", "org0", account,
                                             "--field", INDUSTRY)
    assert "no protected field" in daemon.ctl("release", "org0", account)
    resynced = ControlClient(daemon.socket, timeout=120).call(
        "resync", {"org": "org0", "objects": ["Account"], "wait": True})
    assert resynced["phase"] == "done", resynced
    assert user.record(account)[INDUSTRY] == "Energy"
