"""Confirmation rules answer, per pause, how much silence ends the turn."""

from __future__ import annotations

import pytest

from presence.audio.prosody import PauseCue
from presence.session.endpointing import AdaptiveSilence, FixedSilence, make_rule


def cue(finality: float) -> PauseCue:
    return PauseCue(None, None, None, finality)


def test_fixed_silence_ignores_the_cue() -> None:
    rule = FixedSilence(320)
    assert rule.confirm_after_ms(cue(0.0)) == rule.confirm_after_ms(cue(1.0)) == 320
    assert not rule.uses_prosody


def test_adaptive_silence_spans_final_to_continuation_with_finality() -> None:
    rule = AdaptiveSilence(final_ms=200, continuation_ms=800)
    assert rule.confirm_after_ms(cue(1.0)) == 200
    assert rule.confirm_after_ms(cue(0.0)) == 800
    assert rule.confirm_after_ms(cue(0.5)) == 500
    assert rule.uses_prosody


def test_adaptive_silence_refuses_a_final_wait_longer_than_the_mid_sentence_one() -> None:
    with pytest.raises(ValueError, match="final_ms"):
        AdaptiveSilence(final_ms=900, continuation_ms=300)


def test_rules_are_built_from_settings_by_name() -> None:
    assert make_rule("fixed", 800) == FixedSilence(800)
    assert make_rule("adaptive", 960, final_ms=640) == AdaptiveSilence(640, 960)
    with pytest.raises(ValueError, match="unknown confirmation rule"):
        make_rule("psychic", 100)
