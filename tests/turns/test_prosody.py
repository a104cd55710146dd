"""Pitch and finality from raw windows."""

from __future__ import annotations

import numpy as np
import pytest

from presence.audio.prosody import ProsodyTracker, window_prosody
from tests.turns.test_turn_taker import tone


@pytest.mark.parametrize("f0", [90.0, 150.0, 220.0, 320.0])
def test_the_pitch_of_a_voiced_window_is_found_within_two_percent(f0: float) -> None:
    features = window_prosody(tone(f0, f0, 32), 0)
    assert features.f0_hz is not None and abs(features.f0_hz - f0) / f0 < 0.02


def test_noise_is_unvoiced() -> None:
    noise = (0.1 * np.random.default_rng(0).standard_normal(512)).astype(np.float32)
    assert window_prosody(noise, 0).f0_hz is None


def feed(tracker: ProsodyTracker, audio: np.ndarray, t0: int) -> int:
    for i in range(len(audio) // 512):
        tracker.push_speech(audio[i * 512 : (i + 1) * 512], t0)
        t0 += 512
    return t0


def test_a_fall_below_the_speakers_median_sounds_final_and_a_level_ending_does_not() -> None:
    scores = {}
    for name, ending in {
        "fall": tone(180, 110, 480),
        "level": tone(185, 185, 480),
        "rise": tone(180, 240, 480),
    }.items():
        tracker = ProsodyTracker()
        t = feed(tracker, tone(170, 190, 1600), 0)
        feed(tracker, ending, t)
        cue = tracker.cue()
        assert cue.final_pitch_st is not None
        scores[name] = cue.finality
    assert scores["fall"] > 0.6 > 0.4 > scores["level"] > scores["rise"]


def test_before_any_voice_the_cue_is_unknown() -> None:
    assert ProsodyTracker().cue().finality == 0.5
