"""Listening nods, the thinking cue and blinks, in simulated time."""

from __future__ import annotations

import itertools
import random

from presence.session.gestures import GestureConfig, GestureEvent, Gestures
from presence.session.turns import TurnConfig, TurnTaker

MS = 16


def drive(taker: TurnTaker, gestures: Gestures, prob: float, ms: int, t: int) -> tuple[int, list[str]]:
    names: list[str] = []
    for _ in range(ms // 32):
        names += [g.name for g in gestures.on_transitions(taker.on_vad(prob, t, 512))]
        t += 512
    return t, names


def quiet_blinks(**kw: int) -> GestureConfig:
    return GestureConfig(blink_mean_gap_ms=10**9, blink_min_gap_ms=10**9, **kw)


def test_a_nod_acknowledges_a_long_phrase_but_not_a_short_one() -> None:
    taker = TurnTaker(TurnConfig(confirm_ms=2000))
    gestures = Gestures(random.Random(1), quiet_blinks(nod_min_phrase_ms=700))
    t, names = drive(taker, gestures, 0.9, 320, 0)
    t, more = drive(taker, gestures, 0.05, 320, t)
    assert "nod" not in names + more
    t, names = drive(taker, gestures, 0.9, 960, t)
    t, more = drive(taker, gestures, 0.05, 320, t)
    assert more.count("nod") == 1


def test_nods_are_rate_limited() -> None:
    taker = TurnTaker(TurnConfig(confirm_ms=5000))
    gestures = Gestures(random.Random(1), quiet_blinks(nod_min_phrase_ms=500, nod_min_gap_ms=3000))
    t, nods = 0, 0
    for _ in range(5):  # phrases end at 0.8, 1.8, 2.8, 3.8 and 4.8 s: nods at the first and last
        t, names = drive(taker, gestures, 0.9, 800, t)
        nods += names.count("nod")
        t, names = drive(taker, gestures, 0.05, 192, t)
        nods += names.count("nod")
    assert nods == 2


def test_thinking_shows_when_the_reply_is_late_and_only_once() -> None:
    taker = TurnTaker(TurnConfig(confirm_ms=320))
    gestures = Gestures(random.Random(1), quiet_blinks(thinking_after_ms=600))
    t, _ = drive(taker, gestures, 0.9, 640, 0)
    t, _ = drive(taker, gestures, 0.05, 352, t)
    confirmed_at = t
    assert gestures.poll(confirmed_at + 500 * MS) == []
    late = gestures.poll(confirmed_at + 700 * MS)
    assert [g.name for g in late] == ["thinking"] and late[0].turn_id == 1
    assert gestures.poll(confirmed_at + 900 * MS) == []


def test_no_thinking_when_the_reply_starts_in_time() -> None:
    taker = TurnTaker(TurnConfig(confirm_ms=320))
    gestures = Gestures(random.Random(1), quiet_blinks(thinking_after_ms=600))
    t, _ = drive(taker, gestures, 0.9, 640, 0)
    t, _ = drive(taker, gestures, 0.05, 352, t)
    gestures.reply_started(1)
    assert gestures.poll(t + 2000 * MS) == []


def ticked(gestures: Gestures, until_ms: int, tick_ms: int = 32) -> list[GestureEvent]:
    """Poll as the session's ticker does."""
    return [g for t in range(tick_ms, until_ms + 1, tick_ms) for g in gestures.poll(t * MS)]


def test_blinks_are_irregular_reproducible_and_never_too_close() -> None:
    config = GestureConfig(blink_mean_gap_ms=3500, blink_min_gap_ms=1200, blink_double_p=0.0)
    one = ticked(Gestures(random.Random(42), config), 120_000)
    two = ticked(Gestures(random.Random(42), config), 120_000)
    other = ticked(Gestures(random.Random(7), config), 120_000)
    assert one == two and one != other
    gaps = [(b.t_samples - a.t_samples) / MS for a, b in itertools.pairwise(one)]
    assert min(gaps) >= 1200
    assert 2500 < sum(gaps) / len(gaps) < 4500
    assert len({round(g, -2) for g in gaps}) > 10, "not a metronome"


def test_gesture_events_serialise_for_the_client() -> None:
    blink = Gestures(random.Random(3), GestureConfig(blink_double_p=0.0)).poll(10_000 * MS)[0]
    body = blink.to_json()
    expected = {"type": "gesture", "name": "blink", "at": None, "turn_id": None, "intensity": 1.0, "duration_ms": 150}
    assert body == expected


def test_a_timeline_jump_to_the_end_of_int64_yields_a_blink_or_two_not_a_catch_up_loop() -> None:
    # A client once stamped its audio 2^62 samples ahead: catching up blinks one ~4 s gap at a
    # time hung the server. Missed blinks are skipped, however far the timeline jumped.
    gestures = Gestures(random.Random(5), GestureConfig(blink_double_p=1.0))
    assert len(gestures.poll(2**62)) <= 2
    assert gestures.poll(2**62 + 1) == []
