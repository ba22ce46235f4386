"""The Bayeux client's replay-id rules (ilyd/salesforce/bayeux_subscriptions.py), as plain
logic: stored ids win, -2 after a -1 subscription with nothing stored, a rejected id is not
asked for again, gaps are reported, and filtered channels are keyed without their query."""

from __future__ import annotations

from ilyd import metrics
from ilyd.salesforce.bayeux_messages import BayeuxEvent
from ilyd.salesforce.bayeux_state import ReplayGap
from ilyd.salesforce.bayeux_subscriptions import ALL_RETAINED, Subscriptions

TOPIC = "/topic/IlyLeadChanges"


def test_the_stored_replay_id_wins_over_the_default() -> None:
    stored = {TOPIC: 41}
    subs = Subscriptions([TOPIC, "/data/LeadChangeEvent"], replay_ids=lambda: stored,
                         default_replay=-1)
    assert subs.replay_for(TOPIC) == 41
    assert subs.replay_for("/data/LeadChangeEvent") == -1


def test_a_channel_subscribed_with_minus_one_and_nothing_stored_since_gets_minus_two() -> None:
    subs = Subscriptions([TOPIC], replay_ids=dict, default_replay=-1)
    assert subs.replay_for(TOPIC) == -1
    subs.subscribed(TOPIC)
    assert subs.replay_for(TOPIC) == ALL_RETAINED


def test_a_rejected_id_is_replaced_by_minus_two_until_the_stored_id_moves_on() -> None:
    stored = {TOPIC: 7}
    gaps: list[ReplayGap] = []
    subs = Subscriptions([TOPIC], replay_ids=lambda: stored, on_gap=gaps.append, org="subs-a")
    before = metrics.REPLAY_FALLBACKS.labels(org="subs-a")._value.get()
    subs.gap(TOPIC, 7, "400::The replayId {7} you provided was invalid.")
    assert gaps == [ReplayGap(TOPIC, 7, "400::The replayId {7} you provided was invalid.")]
    assert metrics.REPLAY_FALLBACKS.labels(org="subs-a")._value.get() == before + 1
    assert subs.replay_for(TOPIC) == ALL_RETAINED
    stored[TOPIC] = 9
    assert subs.replay_for(TOPIC) == 9


def test_a_failing_gap_callback_does_not_escape() -> None:
    def boom(_gap: ReplayGap) -> None:
        raise RuntimeError("handler bug")

    subs = Subscriptions([TOPIC], on_gap=boom)
    subs.gap(TOPIC, 3, "invalid")
    assert subs.replay_for(TOPIC) == -1  # no store: the (empty) cursor, then the default


def test_without_a_store_the_cursor_follows_events_keyed_without_a_filter() -> None:
    filtered = f"{TOPIC}?Company=Acme"
    subs = Subscriptions([filtered, filtered], default_replay=-1)
    assert subs.channels == [filtered]
    subs.advance([BayeuxEvent(filtered, {}, 5), BayeuxEvent(filtered, {}, None)])
    assert subs.cursor() == {TOPIC: 5}
    assert subs.replay_for(filtered) == 5
