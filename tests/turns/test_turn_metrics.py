"""Per-turn marks from transitions, their JSON and their histograms."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from presence.session.turn_metrics import TurnHistograms, TurnLog
from presence.session.turns import TurnConfig, TurnTaker


def run(taker: TurnTaker, log: TurnLog, prob: float, ms: int, t: int) -> int:
    for _ in range(ms // 32):
        log.observe(taker.on_vad(prob, t, 512))
        t += 512
    return t


def test_a_turn_with_one_abandoned_speculation_is_recorded_exactly() -> None:
    taker, log = TurnTaker(TurnConfig(speculate_ms=96, confirm_ms=480)), TurnLog()
    t = run(taker, log, 0.9, 640, 0)
    t = run(taker, log, 0.05, 320, t)  # speculates, then…
    t = run(taker, log, 0.9, 640, t)  # …the user goes on
    end_of_speech = t
    t = run(taker, log, 0.05, 640, t)
    marks = log.finish(1)
    assert marks is not None
    assert marks.abandoned_speculations == 1 and marks.pauses == 2
    assert marks.speech_end_sample == end_of_speech
    assert marks.endpoint_delay_ms == 480
    assert marks.speculation_lead_ms == 480 - 96
    marks.mark_s("turn_confirmed", 10.0)
    marks.mark_s("engine_first_audio", 9.9)
    marks.mark_s("first_frame_sent", 10.004)
    body = marks.to_json()
    assert body["endpoint_delay_ms"] == 480 and body["abandoned_speculations"] == 1
    assert body["after_confirm_ms"] == {"turn_confirmed": 0.0, "engine_first_audio": -100.0, "first_frame_sent": 4.0}


def test_histograms_live_on_the_callers_registry() -> None:
    registry = CollectorRegistry()
    histograms = TurnHistograms(registry)
    taker, log = TurnTaker(TurnConfig(speculate_ms=96, confirm_ms=320)), TurnLog()
    t = run(taker, log, 0.9, 640, 0)
    run(taker, log, 0.05, 640, t)
    marks = log.finish(1)
    assert marks is not None
    histograms.observe(marks)
    assert registry.get_sample_value("presence_turn_endpoint_delay_seconds_count") == 1
    assert registry.get_sample_value("presence_turn_endpoint_delay_seconds_sum") == 0.32
    assert registry.get_sample_value("presence_turn_abandoned_speculations_bucket", {"le": "0.0"}) == 1
    TurnHistograms(CollectorRegistry())  # a second app's registry does not collide
