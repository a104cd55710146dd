"""The turn machine driven window by window in simulated time (32 ms windows at 16 kHz)."""

from __future__ import annotations

import numpy as np

from presence.audio.prosody import PauseCue
from presence.engines.base import TurnEventKind
from presence.session.endpointing import AdaptiveSilence, FixedSilence
from presence.session.turns import Signal, Transition, TurnConfig, TurnState, TurnTaker

W = 512  # samples per window
MS_PER_W = 32


class Driver:
    """Feeds speech/silence runs and keeps every transition with the window it came from."""

    def __init__(self, config: TurnConfig, audio: bool = False) -> None:
        self.taker = TurnTaker(config)
        self.t = 0
        self.log: list[Transition] = []

    def state(self) -> TurnState:
        """Read afresh (the checker would keep an earlier ``taker.state`` narrowed across feeds)."""
        return self.taker.state

    def feed(self, prob: float, ms: int, audio: np.ndarray | None = None) -> list[Transition]:
        out: list[Transition] = []
        for i in range(ms // MS_PER_W):
            window = None if audio is None else audio[i * W : (i + 1) * W]
            out += self.taker.on_vad(prob, self.t, W, window)
            self.t += W
        self.log += out
        return out

    def signals(self) -> list[Signal]:
        return [tr.signal for tr in self.log]


def test_a_pause_speculates_then_confirms_and_tells_the_engine_each_step() -> None:
    d = Driver(TurnConfig(speculate_ms=96, confirm_ms=320))
    d.feed(0.9, 640)
    d.feed(0.05, 480)
    assert d.signals() == [Signal.SPEECH, Signal.SILENCE, Signal.PAUSE_SHORT, Signal.PAUSE_CONFIRMED]
    kinds = [tr.engine_event.kind for tr in d.log if tr.engine_event]
    assert kinds == [TurnEventKind.USER_STARTED, TurnEventKind.USER_PAUSED, TurnEventKind.TURN_CONFIRMED]
    assert d.taker.state is TurnState.RESPONDING
    silence_start = 640 * 16
    confirmed = d.log[-1].t_samples
    assert confirmed - silence_start == 320 * 16  # exactly confirm_ms of silence, on a window edge


def test_speech_resuming_during_speculation_abandons_it_within_the_same_turn() -> None:
    d = Driver(TurnConfig(speculate_ms=96, confirm_ms=640))
    d.feed(0.9, 640)
    d.feed(0.05, 320)
    resumed = d.feed(0.9, 320)
    assert [tr.signal for tr in resumed] == [Signal.SPEECH_RESUMED]
    assert resumed[0].engine_event is not None and resumed[0].engine_event.kind is TurnEventKind.TURN_ABANDONED
    assert {tr.turn_id for tr in d.log} == {1}


def test_speech_resuming_before_speculation_tells_the_engine_nothing() -> None:
    d = Driver(TurnConfig(speculate_ms=160, confirm_ms=640))
    d.feed(0.9, 640)
    d.feed(0.05, 64)
    resumed = d.feed(0.9, 64)
    assert [(tr.signal, tr.engine_event) for tr in resumed] == [(Signal.SPEECH_RESUMED, None)]


def test_a_click_shorter_than_min_speech_starts_no_turn() -> None:
    d = Driver(TurnConfig(min_speech_ms=64))
    d.feed(0.9, 32)
    d.feed(0.05, 1000)
    assert d.log == []


def test_a_back_channel_shorter_than_min_barge_in_does_not_interrupt() -> None:
    d = Driver(TurnConfig(confirm_ms=320, min_barge_in_ms=200))
    d.feed(0.9, 640)
    d.feed(0.05, 640)
    assert d.taker.state is TurnState.RESPONDING
    d.feed(0.9, 160)  # "mm-hm"
    d.feed(0.05, 320)
    assert d.taker.state is TurnState.RESPONDING
    assert Signal.BARGE_IN not in d.signals()


def test_speech_longer_than_min_barge_in_interrupts_and_opens_a_new_turn_from_its_onset() -> None:
    d = Driver(TurnConfig(confirm_ms=320, min_barge_in_ms=200))
    d.feed(0.9, 640)
    d.feed(0.05, 640)
    onset = d.t
    barge = d.feed(0.9, 256)
    assert [tr.signal for tr in barge] == [Signal.BARGE_IN]
    assert barge[0].t_samples == onset and barge[0].turn_id == 2
    assert d.taker.state is TurnState.USER_SPEAKING


def test_reply_done_returns_to_listening_and_is_ignored_elsewhere() -> None:
    d = Driver(TurnConfig(confirm_ms=320))
    assert d.taker.reply_done(0) == []
    d.feed(0.9, 640)
    d.feed(0.05, 640)
    done = d.taker.reply_done(d.t)
    assert [(tr.previous, tr.state) for tr in done] == [(TurnState.RESPONDING, TurnState.LISTENING)]


def test_a_dip_between_the_two_thresholds_does_not_end_the_speech_run() -> None:
    d = Driver(TurnConfig(speech_threshold=0.5, silence_threshold=0.35))
    d.feed(0.9, 320)
    d.feed(0.4, 320)  # hysteresis: still speech
    assert d.signals() == [Signal.SPEECH]
    d.feed(0.3, 32)
    assert d.signals() == [Signal.SPEECH, Signal.SILENCE]


def test_a_rule_shorter_than_speculation_confirms_without_speculating() -> None:
    d = Driver(TurnConfig(speculate_ms=200, rule=FixedSilence(96)))
    d.feed(0.9, 640)
    d.feed(0.05, 320)
    assert d.signals() == [Signal.SPEECH, Signal.SILENCE, Signal.PAUSE_CONFIRMED]
    assert d.log[-1].previous is TurnState.PAUSED


def test_the_silence_transition_carries_the_rules_choice_for_that_pause() -> None:
    d = Driver(TurnConfig(rule=FixedSilence(480)))
    d.feed(0.9, 640)
    d.feed(0.05, 64)
    assert d.log[1].signal is Signal.SILENCE and d.log[1].confirm_after_ms == 480


def tone(f0_start: float, f0_end: float, ms: int, rate: int = 16_000) -> np.ndarray:
    """A voiced glide from f0_start to f0_end (harmonics), speech-like enough for the pitch tracker."""
    n = ms * rate // 1000
    f0 = np.linspace(f0_start, f0_end, n)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = np.sum([np.sin(k * phase) / k for k in range(1, 6)], axis=0)
    return np.asarray(0.2 * x, dtype=np.float32)


def test_the_adaptive_rule_confirms_sooner_after_a_fall_to_the_bottom_of_the_range() -> None:
    rule = AdaptiveSilence(final_ms=160, continuation_ms=800)
    waits = {}
    for name, ending in {"falling": tone(180, 110, 640), "level": tone(180, 180, 640)}.items():
        d = Driver(TurnConfig(speculate_ms=96, rule=rule))
        d.feed(0.9, 1280, tone(170, 190, 1280))  # the speaker's range, around 180 Hz
        d.feed(0.9, 640, ending)
        d.feed(0.05, 1200)
        silence = next(tr for tr in d.log if tr.signal is Signal.SILENCE)
        confirmed = next(tr for tr in d.log if tr.signal is Signal.PAUSE_CONFIRMED)
        waits[name] = (confirmed.t_samples - silence.t_samples) / 16
        assert silence.confirm_after_ms is not None
    assert waits["falling"] < 400 < waits["level"]


def test_without_audio_the_adaptive_rule_waits_halfway() -> None:
    d = Driver(TurnConfig(rule=AdaptiveSilence(final_ms=200, continuation_ms=600)))
    d.feed(0.9, 640)
    d.feed(0.05, 64)
    assert d.taker.last_cue == PauseCue.unknown()
    assert d.log[1].confirm_after_ms == 400


def test_an_engine_taking_the_turn_during_a_pause_confirms_it_before_the_rule_would() -> None:
    d = Driver(TurnConfig(speculate_ms=96, confirm_ms=3000))
    d.feed(0.9, 640)
    d.feed(0.05, 160)
    taken = d.taker.engine_took_turn(1, d.t)
    assert [tr.signal for tr in taken] == [Signal.ENGINE_TOOK_TURN]
    assert taken[0].engine_event is not None and taken[0].engine_event.kind is TurnEventKind.TURN_CONFIRMED
    assert d.taker.state is TurnState.RESPONDING


def test_an_engine_claim_while_the_vad_still_hears_speech_waits_for_the_first_silent_window() -> None:
    d = Driver(TurnConfig(speculate_ms=96, confirm_ms=3000))
    d.feed(0.9, 640)
    assert d.taker.engine_took_turn(1, d.t) == []
    d.feed(0.9, 64)
    assert d.taker.state is TurnState.USER_SPEAKING
    d.feed(0.05, 32)
    assert d.signals()[-2:] == [Signal.SILENCE, Signal.ENGINE_TOOK_TURN]
    assert d.state() is TurnState.RESPONDING


def test_a_claim_for_an_old_turn_or_with_nobody_speaking_changes_nothing() -> None:
    d = Driver(TurnConfig(speculate_ms=96, confirm_ms=320))
    assert d.taker.engine_took_turn(0, 0) == []
    d.feed(0.9, 640)
    d.feed(0.05, 160)
    assert d.taker.engine_took_turn(0, d.t) == [], "turn 0 is not the user's current turn"
    assert d.taker.state is TurnState.SPECULATING


def test_speech_right_after_an_early_release_yields_within_the_same_turn() -> None:
    d = Driver(TurnConfig(speculate_ms=96, confirm_ms=224, min_speech_ms=64, min_barge_in_ms=320, yield_window_ms=1500))
    d.feed(0.9, 640)
    d.feed(0.05, 320)  # confirmed at 224 ms: released
    assert d.taker.state is TurnState.RESPONDING
    d.feed(0.05, 288)
    resumed = d.feed(0.9, 64)  # two windows: min_speech_ms, far below min_barge_in_ms
    assert [tr.signal for tr in resumed] == [Signal.USER_RESUMED]
    event = resumed[0].engine_event
    assert event is not None and event.kind is TurnEventKind.TURN_RESUMED and event.turn_id == 1
    assert d.state() is TurnState.USER_SPEAKING
    d.feed(0.9, 320)
    d.feed(0.05, 320)
    assert d.signals()[-3:] == [Signal.SILENCE, Signal.PAUSE_SHORT, Signal.PAUSE_CONFIRMED]
    assert {tr.turn_id for tr in d.log} == {1}, "one turn: the yield did not start another"


def test_speech_after_the_yield_window_must_barge_in_and_starts_a_new_turn() -> None:
    d = Driver(TurnConfig(speculate_ms=96, confirm_ms=224, min_barge_in_ms=320, yield_window_ms=480))
    d.feed(0.9, 640)
    d.feed(0.05, 224 + 544)  # 544 ms after the release: past the window
    assert d.feed(0.9, 64) == [], "too short for a barge-in, and no longer a yield"
    barged = d.feed(0.9, 320)
    assert [tr.signal for tr in barged] == [Signal.BARGE_IN] and barged[0].turn_id == 2


def test_without_a_yield_window_every_resumption_is_a_barge_in() -> None:
    d = Driver(TurnConfig(speculate_ms=96, confirm_ms=224, min_barge_in_ms=192, yield_window_ms=0))
    d.feed(0.9, 640)
    d.feed(0.05, 256)
    assert [tr.signal for tr in d.feed(0.9, 224)] == [Signal.BARGE_IN]
