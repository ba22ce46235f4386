"""Replay ids across devorg restarts (kept with --data, never colliding without it), and
the streaming faults that reproduce reused ids and silent stalls: reset-replay, mute."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ilyd.devorg import DevOrg
from tests.devorg.cometd_helpers import OrgClient, RawBayeux
from tests.helpers.devorg_process import start_devorg

TOPIC = "/topic/RestartLeads"
CDC = "/data/LeadChangeEvent"


def with_topic(dev: DevOrg) -> OrgClient:
    org = OrgClient(dev)
    org.streaming("settings", {"hold_seconds": 1})
    org.push_topic("RestartLeads", "SELECT Id, Email FROM Lead")
    org.select_cdc("Lead")
    return org


def replay_ids(messages: list[dict[str, Any]], channel: str = TOPIC) -> list[int]:
    return [m["data"]["event"]["replayId"] for m in messages if m.get("channel") == channel]


def subscribed(dev: DevOrg, org: OrgClient, replay: int) -> RawBayeux:
    """A Bayeux client subscribed to the topic from `replay`, its first connect answered."""
    bayeux = RawBayeux(dev, org.token)
    bayeux.handshake()
    bayeux.connect()
    assert bayeux.subscribe(TOPIC, replay=replay)["successful"]
    return bayeux


def delivered(bayeux: RawBayeux, count: int) -> list[int]:
    """Replay ids of the next `count` events delivered on the topic (connects until then)."""
    ids: list[int] = []
    for _ in range(10):
        ids += replay_ids(bayeux.connect())
        if len(ids) >= count:
            break
    return ids


def test_replay_ids_and_retained_events_survive_a_restart_with_data(tmp_path: Path) -> None:
    data = tmp_path / "devorg.sqlite"
    with start_devorg(data=data) as first:
        org = with_topic(first)
        for n in range(3):
            org.lead(n)
        before = org.streaming()["channels"]
    with start_devorg(data=data) as second:
        org = OrgClient(second)
        org.streaming("settings", {"hold_seconds": 1})
        org.lead(3)  # right after the restart: still one PushTopic event and one CDC event
        after = org.streaming()["channels"]
        assert after[TOPIC]["retained"] == 4
        assert after[CDC]["retained"] == 4
        assert after[TOPIC]["last_replay_id"] > before[TOPIC]["last_replay_id"]
        assert after[CDC]["last_replay_id"] > before[CDC]["last_replay_id"]
        # A replay id handed out before the restart still names the same place.
        bayeux = subscribed(second, org, before[TOPIC]["last_replay_id"])
        assert delivered(bayeux, 1) == [after[TOPIC]["last_replay_id"]]


def test_without_data_a_restart_never_hands_out_an_id_an_earlier_run_did() -> None:
    with start_devorg() as first:
        org = with_topic(first)
        for n in range(5):
            org.lead(n)
        held = org.streaming()["channels"][TOPIC]["last_replay_id"]
    with start_devorg() as second:
        org = with_topic(second)
        org.lead(9)
        channel = org.streaming()["channels"][TOPIC]
        assert channel["last_replay_id"] > held
        # The id a client held from the earlier run names nothing here: rejected, not
        # silently taken as a position in a different stream.
        bayeux = RawBayeux(second, org.token)
        bayeux.handshake()
        reply = bayeux.subscribe(TOPIC, replay=held)
        assert not reply["successful"]
        assert reply["error"].startswith(f"400::The replayId {{{held}}} you provided was invalid")


def test_reset_replay_restarts_ids_at_one_so_a_held_id_skips_new_events() -> None:
    with start_devorg() as dev:
        org = with_topic(dev)
        for n in range(3):
            org.lead(n)
        org.streaming("reset-replay")
        assert org.streaming()["channels"][TOPIC]["retained"] == 0
        for n in range(5):
            org.lead(10 + n)
        assert org.streaming()["channels"][TOPIC]["last_replay_id"] == 5
        # A client holding id 3 from before is accepted and gets only ids 4 and 5: the
        # first three new events are skipped without an error, as a reused id does.
        assert delivered(subscribed(dev, org, 3), 2) == [4, 5]


def test_a_muted_org_answers_connects_but_delivers_nothing_until_unmuted() -> None:
    with start_devorg() as dev:
        org = with_topic(dev)
        bayeux = subscribed(dev, org, -1)
        assert org.streaming("mute") == {"muted": True}
        org.lead(1)
        replies = bayeux.connect()  # held for hold_seconds, then answered empty
        assert [r["channel"] for r in replies] == ["/meta/connect"]
        assert replies[0]["successful"]
        assert org.streaming()["channels"][TOPIC]["retained"] == 1  # retention goes on
        assert org.streaming("unmute") == {"muted": False}
        org.lead(2)
        assert len(delivered(bayeux, 1)) == 1  # only the event after unmute
        # The event logged while muted is still there for a replay.
        assert org.streaming()["channels"][TOPIC]["retained"] == 2
