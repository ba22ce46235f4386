"""The real-time writer's window follows the org's API budget, against devorg: it stays at
`writer_window` while the org's allowance has room, widens (never past
`writer_window_max`) when the writer's projected daily calls would pass `api_share`, and
narrows back once there is room. The writer runs on a clock of the test's (the hours a
budget takes to recover pass at once); its calls go to devorg, whose `Sforce-Limit-Info`
tells the allowance."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from ilyd.pipeline.enricher import Enricher
from ilyd.pipeline.runtime import OrgPipeline
from ilyd.pipeline.window import DAY, HORIZON
from ilyd.pipeline.writer import Writer
from ilyd.store.inbox import InboxEntry
from tests.helpers.devorg_process import free_ports
from tests.pipeline.conftest import Daemon, SalesforceUser, wait_until

BASE, WIDEST = 0.1, 30.0
ALLOWANCE, SHARE = 50_000, 0.2
RECORDS = 70  # past the first burst the allowance leaves room for


class Stream:
    """Records created in the org one by one, each enriched into the writer."""

    def __init__(self, pipeline: OrgPipeline, user: SalesforceUser, writer: Writer) -> None:
        self.pipeline, self.user, self.writer = pipeline, user, writer
        self.enricher = Enricher(pipeline.org, pipeline.inbox, pipeline.provider, writer.add,
                                 state=pipeline.state, workers=1)
        self.count = 0

    def record(self) -> str:
        self.count += 1
        record = self.user.create("Account", Name=f"A{self.count}", Website="acme.example")
        self.pipeline.inbox.put(self.pipeline.org, [
            InboxEntry("Account", record, {"Website": "acme.example"})])
        self.enricher.run_round()
        return record


@pytest.fixture
def clock() -> list[float]:
    return [1_000_000.0]


def writer_for(pipeline: OrgPipeline, clock: list[float], share: float = 0.2,
               batch_size: int = 200) -> Writer:
    enrich = replace(pipeline.config.enrich, writer_window=BASE, writer_window_max=WIDEST,
                     api_share=share)
    return Writer(pipeline.org, pipeline.rest, pipeline.inbox, pipeline.state,
                  pipeline.hashes, enrich=enrich, budget=pipeline.budget,
                  batch_size=batch_size, clock=lambda: clock[0])


@pytest.fixture
def stream(pipeline: OrgPipeline, user: SalesforceUser,
           clock: list[float]) -> Iterator[Stream]:
    # 50,000 calls a day, a fifth of them for the writer: a call every 8.6 s on average,
    # after a first burst (the projection follows the rate over a quarter of an hour).
    user.settings(api_limit=ALLOWANCE)
    running = Stream(pipeline, user, writer_for(pipeline, clock))
    yield running
    running.enricher.close()


def flush_when_due(stream: Stream, clock: list[float]) -> float:
    """Let the clock run to the writer's due time and flush; the seconds waited."""
    waited = stream.writer.due_in()
    assert waited is not None
    clock[0] += waited
    assert stream.writer.due_in() == 0.0
    stream.writer.flush()
    return waited


def test_the_window_stays_short_while_the_allowance_has_room(
        stream: Stream, clock: list[float]) -> None:
    stream.record()
    assert stream.writer.due_in() == pytest.approx(BASE)
    flush_when_due(stream, clock)
    clock[0] += 3600.0
    stream.record()
    assert stream.writer.due_in() == pytest.approx(BASE)
    assert stream.writer.window.current() == pytest.approx(BASE)


def test_a_steady_stream_past_the_share_widens_the_window_and_keeps_within_the_share(
        stream: Stream, user: SalesforceUser, clock: list[float]) -> None:
    calls_before, started = user.calls(), clock[0]
    waits = []
    for _ in range(RECORDS):
        stream.record()
        waits.append(flush_when_due(stream, clock))
    spent = user.calls() - calls_before  # the admin API's creates are not API calls
    assert waits[0] == pytest.approx(BASE)
    assert max(waits) > BASE  # widened
    assert all(w <= WIDEST + 1e-6 for w in waits)
    assert stream.writer.window.current() > BASE
    # Every record got written; the projection never passed the share, and the calls
    # kept to it but for a first burst of about a quarter of an hour's share.
    assert stream.pipeline.inbox.depth(stream.pipeline.org) == 0
    projected = stream.writer.window.projected()
    assert projected is not None
    assert projected <= SHARE + 1e-6
    pace = SHARE * ALLOWANCE / DAY
    assert spent <= pace * (clock[0] - started) + pace * HORIZON + 2


def test_the_window_narrows_back_once_the_calls_have_room_again(
        stream: Stream, clock: list[float]) -> None:
    for _ in range(RECORDS):
        stream.record()
        flush_when_due(stream, clock)
    assert stream.writer.window.current() > BASE
    clock[0] += 3 * 3600.0  # a quiet spell
    stream.record()
    assert stream.writer.due_in() == pytest.approx(BASE)
    assert stream.writer.window.current() == pytest.approx(BASE)


def test_the_window_never_passes_writer_window_max_however_small_the_allowance(
        stream: Stream, user: SalesforceUser, clock: list[float]) -> None:
    user.settings(api_limit=100)
    for _ in range(4):
        stream.record()
        assert flush_when_due(stream, clock) <= WIDEST + 1e-6
    stream.record()
    assert stream.writer.due_in() == pytest.approx(WIDEST)
    assert stream.writer.window.current() == pytest.approx(WIDEST)


def test_a_full_batch_goes_at_once_even_while_calls_are_scarce(
        pipeline: OrgPipeline, user: SalesforceUser, clock: list[float]) -> None:
    user.settings(api_limit=100)
    stream = Stream(pipeline, user, writer_for(pipeline, clock, batch_size=2))
    try:
        for _ in range(3):
            stream.record()
            stream.record()
            clock[0] += 1.0  # past the interval between two calls
            assert stream.writer.due_in() == 0.0
            stream.writer.flush()
        stream.record()
        assert stream.writer.due_in() == pytest.approx(WIDEST)
    finally:
        stream.enricher.close()


@pytest.fixture
def scarce_daemon(pipeline: OrgPipeline, user: SalesforceUser,
                  config_path: Path) -> Iterator[tuple[Daemon, int]]:
    user.settings(api_limit=1000)
    port = free_ports(1)[0]
    text = config_path.read_text().replace('listen = "127.0.0.1:0"',
                                           f'listen = "127.0.0.1:{port}"')
    config_path.write_text(text + "[org.enrich]\nwriter_window_max = 20\n")
    running = Daemon(config_path)
    running.start()
    yield running, port
    running.stop()


def test_ctl_orgs_and_the_metrics_show_the_window_and_the_projected_use(
        scarce_daemon: tuple[Daemon, int], user: SalesforceUser) -> None:
    daemon, port = scarce_daemon
    wait_until(lambda: daemon.org().get("state") == "running", timeout=30,
               what="the org running")
    account = user.create("Account", Name="A", Website="acme.example")
    wait_until(lambda: user.record(account)["Ily_Company_Name__c"], timeout=30,
               what="the record written")
    # 1,000 calls a day, a fifth for the writer: after one flush the next must wait.
    detail = wait_until(lambda: (d := daemon.org().get("detail", {})).get(
        "window") == "20.0s" and d, timeout=30, what="the widened window in the status")
    assert str(detail["projected_api_use"]).endswith("%")
    shown = daemon.ctl("orgs")
    assert "window=20.0s" in shown
    assert "projected_api_use=" in shown
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    assert 'ilyd_writer_window_seconds{org="org0"} 20.0' in text
    assert 'ilyd_api_projected_daily_share{org="org0"}' in text
