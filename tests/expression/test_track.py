"""Expression cues placed on the output timeline from a reply's streaming text."""

from __future__ import annotations

import numpy as np
import pytest

from presence.expression.mirror import mirror_event
from presence.expression.track import PREDICT_WORDS, ExpressionCue, ExpressionTrack
from presence.lipsync.base import EnergyAnimator
from presence.media import AudioChunk
from presence.protocol.frames import AudioOut, Event
from presence.session.outbound import ReplyStream


def _names(cues: list[ExpressionCue]) -> list[tuple[str, int]]:
    return [(c.expression.name, c.at_sample) for c in cues]


def test_chunk_words_place_each_clause_at_its_first_word() -> None:
    track = ExpressionTrack()
    cues = []
    words = ["Wonderful!", "I", "love", "it.", "Would", "you", "like", "to", "hear", "more?"]
    for i, word in enumerate(words):
        cues += track.chunk_words(word, 1000 * i)
    cues += track.finish()
    assert _names(cues) == [("happy", 0), ("happy", 1000), ("curious", 4000)]


def test_a_clause_is_predicted_from_its_first_words_and_resent_only_if_the_end_changes_it() -> None:
    track = ExpressionTrack()
    cues = track.chunk_words("Would you like", 0)  # PREDICT_WORDS words: a question already
    assert PREDICT_WORDS == 3 and _names(cues) == [("curious", 0)]
    assert track.chunk_words("to hear more?", 500) == []  # the same face at the end: nothing new
    track = ExpressionTrack()
    assert track.chunk_words("The train leaves", 0) == []  # neutral so far: wait
    assert _names(track.chunk_words("tomorrow, sadly.", 700)) == [("concerned", 0)]


def test_transcript_text_is_placed_at_a_speaking_rate_estimate_never_before_the_audio_produced() -> None:
    track = ExpressionTrack()
    assert track.transcript("I'm sorry,", False, 100) == []  # last word may still grow
    cues = track.transcript("I'm sorry, I could not find it. Shall", False, 900)
    assert _names(cues) == [("concerned", 100)]  # its first word was complete at 100
    cues = track.transcript("I'm sorry, I could not find it. Shall we try again?", True, 1200)
    assert _names(cues) == [("curious", 32 * 24000 // 15)]  # "Shall" is character 32: 2.1 s in at 15 chars/s


def test_once_chunk_words_lead_the_transcript_is_ignored() -> None:
    track = ExpressionTrack()
    assert track.chunk_words("Great, thanks!", 0)
    assert track.transcript("Great, thanks! Sadly it is gone.", True, 5000) == []


def test_a_cue_event_carries_arkit_weights_and_the_timeline_sample() -> None:
    track = ExpressionTrack()
    (cue,) = track.chunk_words("What a wonderful day!", 4800)
    body = cue.to_json(turn_id=7)
    assert body["type"] == "expression" and body["name"] == "happy" and body["at"] == 4800
    assert body["turn_id"] == 7 and body["ramp_ms"] > 0
    assert body["weights"]["mouthSmileLeft"] > 0.2


def _chunk(text: str) -> AudioChunk:
    return AudioChunk(1, np.zeros(2400, np.float32), 24000, (), text)


def test_reply_stream_sends_each_cue_before_the_audio_it_precedes_only_when_negotiated() -> None:
    stream = ReplyStream(1, 48000, 24000, EnergyAnimator(24000), "oculus15", expressions=True)
    frames = stream.push(_chunk("Wonderful!"))
    kinds = [type(f) for f in frames]
    assert kinds[0] is Event and AudioOut in kinds
    first_audio = next(f for f in frames if isinstance(f, AudioOut))
    assert isinstance(frames[0], Event) and frames[0].body["at"] == first_audio.timestamp == 48000
    frames = stream.push(_chunk("Is it far?"))
    assert isinstance(frames[0], Event)
    assert frames[0].body["name"] == "curious" and frames[0].body["at"] == 48000 + 2400
    plain = ReplyStream(1, 0, 24000, EnergyAnimator(24000), "oculus15")
    assert not any(isinstance(f, Event) for f in plain.push(_chunk("Wonderful!")) + plain.finish())


def test_transcript_cues_wait_for_the_next_batch_of_frames() -> None:
    stream = ReplyStream(1, 0, 24000, EnergyAnimator(24000), "oculus15", expressions=True)
    stream.push_text("That is terrible news, I am sorry.", True)
    frames = stream.poll(0)
    assert [f.body["name"] for f in frames if isinstance(f, Event)] == ["concerned"]
    assert stream.poll(0) == []


def test_the_user_s_tone_is_mirrored_at_half_intensity_and_only_for_feelings() -> None:
    happy = mirror_event("That is wonderful news, thank you so much!", 3)
    assert happy is not None and happy["name"] == "happy" and happy["at"] is None and happy["source"] == "user"
    assert happy["intensity"] <= 0.5 and happy["weights"]["mouthSmileLeft"] == pytest.approx(
        0.6 * happy["intensity"], abs=1e-3
    )
    sad = mirror_event("I lost my wallet and I am really upset.", 3)
    assert sad is not None and sad["name"] == "concerned"
    assert mirror_event("Where is the train station?", 3) is None
    assert mirror_event("The station is on the left.", 3) is None
