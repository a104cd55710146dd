"""The look-ahead-aware, transcript-aligned animator: decoder, text → phones, frame scheduling."""

from __future__ import annotations

import numpy as np
import pytest

from presence.audio.espeak import Espeak, Voice
from presence.audio.pcm import resample
from presence.lipsync.aligned import AlignedAnimator
from presence.lipsync.audio import DECODER_MODEL_FILE, MODEL_FILE, load_model, model_path
from presence.lipsync.base import VISEME_INDEX, rest_weights
from presence.lipsync.decoder import DecoderConfig, PhoneDecoder, TextPhone
from presence.lipsync.phones import espeak_arpabet
from presence.lipsync.sphinx_am import packaged_acoustic_model
from presence.lipsync.transcript import TranscriptPhones
from presence.media import AudioChunk

# A toy model of 4 phones (0 is silence): each frame's likelihoods favour one phone strongly.
SIL, A, B, C = 0, 1, 2, 3


def frames_for(phones: list[int], margin: float = 20.0) -> np.ndarray:
    """State log-likelihoods (frames, 4, 3) in which ``phones[f]`` is the best phone at frame f."""
    out = np.full((len(phones), 4, 3), -margin)
    for f, p in enumerate(phones):
        out[f, p, :] = 0.0
    return out


def toy_decoder() -> PhoneDecoder:
    return PhoneDecoder(np.arange(4), SIL, DecoderConfig(scale=1.0, text_scale=1.0))


def word(phones: list[int], index: int) -> list[TextPhone]:
    pause = TextPhone(SIL, index, optional=True)
    return [pause] + [TextPhone(p, index, word_start=i == 0) for i, p in enumerate(phones)]


def test_without_text_the_decoder_follows_the_phone_loop() -> None:
    decoder = toy_decoder()
    truth = [SIL] * 5 + [A] * 6 + [B] * 8 + [C] * 5 + [SIL] * 4
    decoder.push(frames_for(truth))
    units = decoder.best_path(0)
    assert list(decoder.unit_phone(units)) == truth
    assert not decoder.is_text(units).any()


def test_with_text_the_path_runs_through_the_words_phones() -> None:
    decoder = toy_decoder()
    decoder.extend(word([A, B], 1) + word([C], 2))
    truth = [SIL] * 4 + [A] * 6 + [B] * 6 + [C] * 6 + [SIL] * 3
    decoder.push(frames_for(truth))
    units = decoder.best_path(0)
    speech = slice(4, 22)
    assert decoder.is_text(units[speech]).all()
    assert list(decoder.unit_phone(units)[speech]) == truth[speech]


def test_text_that_arrives_after_its_audio_is_aligned_by_decoding_again() -> None:
    decoder = toy_decoder()
    truth = [SIL] * 4 + [A] * 6 + [B] * 6 + [SIL] * 3
    decoder.push(frames_for(truth))
    assert not decoder.is_text(decoder.best_path(0)).any()
    decoder.extend(word([A, B], 1), redo_from=0)
    units = decoder.best_path(0)
    assert decoder.is_text(units[4:16]).all()


def test_a_wrong_word_is_left_for_the_loop_and_the_alignment_resyncs_on_the_next() -> None:
    decoder = PhoneDecoder(
        np.arange(4), SIL, DecoderConfig(scale=1.0, text_scale=1.0, lost_penalty=3.0, resync_penalty=3.0)
    )
    ending = [TextPhone(SIL, 4)]  # final text ends in a pause
    decoder.extend(word([A], 1) + word([A, A], 2) + word([C], 3) + ending)  # the audio says B, not A A
    truth = [SIL] * 3 + [A] * 6 + [B] * 12 + [C] * 6 + [SIL] * 2
    decoder.push(frames_for(truth))
    units = decoder.best_path(0)
    phones = decoder.unit_phone(units)
    assert list(phones[9:21]) == [B] * 12, "the loop, not the text, explains the changed word"
    assert not decoder.is_text(units[9:21]).any()
    assert decoder.is_text(units[21:27]).all(), "and the next word is aligned again"


def toy_phonemizer(text: str) -> list[tuple[int, str]]:
    table = {"map": ["m", "a", "p"], "be": ["b", "i:"], "so": ["s", "oU"]}
    return [(i, s) for i, w in enumerate(text.split()) for s in table[w.strip(".,").lower()]]


def test_only_complete_words_become_phones_and_final_text_ends_in_a_pause() -> None:
    index = {p: i for i, p in enumerate(packaged_acoustic_model().phones)}
    text = TranscriptPhones(index, toy_phonemizer)
    first = text.update("map be so", final=False)  # "so" may go on ("soon")
    names = [packaged_acoustic_model().phones[p.phone] for p in first if not p.optional]
    assert names == ["M", "AE", "P", "B", "IY"]
    assert [p.word_start for p in first if not p.optional] == [True, False, False, True, False]
    rest = text.update("map be so.", final=True)
    names = [packaged_acoustic_model().phones[p.phone] for p in rest]
    assert names == ["SIL", "S", "OW", "SIL"]
    assert text.update("map be so.", final=True) == []


def test_every_espeak_symbol_has_model_phones() -> None:
    phones = set(packaged_acoustic_model().phones)
    for symbol in ("aI", "tS", "i@3", "'O:", ",e@", "@L", "Q?", "x"):
        assert set(espeak_arpabet(symbol)) <= phones


def espeak_16k(text: str) -> tuple[np.ndarray, list[tuple[int, str]]]:
    speech = Espeak.instance().synthesize(text, Voice("en-us", rate_wpm=170))
    audio = resample(speech.samples, speech.sample_rate, 16000)
    audio = audio + np.random.default_rng(0).normal(0, 1e-3, len(audio)).astype(np.float32)
    marks = [(round(p.offset * 16000 / speech.sample_rate), p.symbol) for p in speech.phonemes]
    return audio.astype(np.float32), marks


def stream(animator: AlignedAnimator, audio: np.ndarray, chunk: int = 320, start: int = 0) -> list:  # type: ignore[type-arg]
    frames = []
    for offset in range(0, len(audio), chunk):
        frames += animator.push(AudioChunk(1, audio[offset : offset + chunk], 16000), start + offset)
    return frames + animator.flush()


def test_frames_wait_for_the_look_ahead_on_hand_unless_playback_is_about_to_reach_them() -> None:
    animator = AlignedAnimator(16000, fps=50, max_lookahead_ms=250, guard_ms=40, use_text=False)
    audio, _ = espeak_16k("Hello there.")
    assert animator.push(AudioChunk(1, audio[:1600], 16000), 0) == [], "100 ms on hand: all frames wait"
    due = animator.poll(now_sample=0)  # playback starts: frames within 40 ms leave now
    assert [f.t_samples for f in due] == [0, 320]
    assert animator.poll(now_sample=0) == []
    frames = animator.push(AudioChunk(1, audio[1600:6400], 16000), 1600)  # 400 ms on hand
    assert frames and frames[-1].t_samples + animator.lookahead_samples <= 6400
    report = animator.report()
    assert report["lookahead_ms_min"] == pytest.approx(80.0), "the frame at 20 ms left with 100 − 20 ms"
    assert report["lookahead_ms_p50"] == 250.0
    late = animator.poll(now_sample=10**6)  # playback caught up (a real-time engine)
    assert late and all(f.t_samples < 6400 for f in late), "never a frame past the audio"
    assert animator.report()["lookahead_ms_min"] == pytest.approx((6400 - late[-1].t_samples) / 16)


def test_frames_sit_on_the_grid_without_gaps_and_the_reply_ends_at_rest() -> None:
    audio, _ = espeak_16k("Maybe a big map.")
    frames = stream(AlignedAnimator(16000, fps=60, use_text=False), audio, start=5000)
    times = [f.t_samples for f in frames]
    step = round(16000 / 60)
    assert times[0] >= 5000 and np.all(np.diff(times) == step)
    assert times[-1] >= 5000 + len(audio) - step
    assert np.array_equal(frames[-1].weights, rest_weights())
    assert all(np.isclose(f.weights.sum(), 1.0, atol=1e-5) for f in frames)


def test_with_the_text_the_lips_close_for_every_m_b_and_p() -> None:
    text = "Maybe a big map, Bob."
    audio, marks = espeak_16k(text)
    animator = AlignedAnimator(16000, fps=100)
    animator.add_text(text, final=True)  # before the audio, as OpenAI often sends it
    frames = stream(animator, audio)
    closed = {f.t_samples for f in frames if int(np.argmax(f.weights)) == VISEME_INDEX["PP"]}
    bilabials = [offset for offset, symbol in marks if symbol.lstrip("',") in ("m", "b", "p")]
    assert len(bilabials) == 7  # m b b m p b b
    for offset in bilabials:
        assert any(abs(t - offset) <= 0.06 * 16000 for t in closed), f"no closed lips near sample {offset}"


def test_another_models_scores_decide_between_phones_the_acoustic_model_cannot_tell_apart() -> None:
    truth = [SIL] * 4 + [B] * 8 + [SIL] * 4
    ambiguous = frames_for(truth)
    ambiguous[4:12, A, :] = 0.0  # A and B score alike where B is spoken (a tie goes to A)
    extra = np.zeros((len(truth), 4))
    extra[4:12, A] = -3.0  # the other model is sure it is not A
    plain = PhoneDecoder(np.arange(4), SIL, DecoderConfig(scale=1.0, text_scale=1.0))
    fused = PhoneDecoder(np.arange(4), SIL, DecoderConfig(scale=1.0, text_scale=1.0, extra_weight=1.0))
    plain.push(ambiguous, extra)  # weight 0: the extra scores do not count
    fused.push(ambiguous, extra)
    assert list(fused.unit_phone(fused.best_path(0))) == truth
    assert list(plain.unit_phone(plain.best_path(0))[4:12]) != [B] * 8


def fused(**kwargs: object) -> AlignedAnimator:
    """An animator with the eSpeak-trained MLP in its phone scores (not the default)."""
    config = DecoderConfig(extra_weight=1.0, text_extra_weight=0.5)
    return AlignedAnimator(16000, fps=100, config=config, viseme_model=load_model(), **kwargs)  # type: ignore[arg-type]


def test_the_fused_model_needs_no_audio_the_decoder_does_not_already_wait_for() -> None:
    from presence.lipsync.aligned import FUTURE_FRAMES, MEL_ROW

    assert AlignedAnimator(16000, use_text=False).viseme_model is None, "off by default"
    for path in (model_path(MODEL_FILE), model_path(DECODER_MODEL_FILE)):
        if not path.exists():
            continue
        model = load_model(path)
        # pocketsphinx frame t (window 10t .. 10t + 25.6 ms) is read with frames up to t + 3;
        # log-mel row j ends at 10j + 12.5 ms.
        assert 10 * (MEL_ROW + model.future_rows) + 12.5 <= 10 * FUTURE_FRAMES + 25.6


def test_chunking_does_not_change_the_fused_scores() -> None:
    audio, _ = espeak_16k("Maybe a big map.")
    a = stream(fused(use_text=False, max_lookahead_ms=10_000), audio, chunk=len(audio))
    b = stream(fused(use_text=False, max_lookahead_ms=10_000), audio, chunk=137)
    assert len(a) == len(b)
    assert all(np.allclose(x.weights, y.weights) for x, y in zip(a, b, strict=True))


def test_the_fused_animator_still_closes_the_lips_for_every_m_b_and_p_with_the_text() -> None:
    text = "Maybe a big map, Bob."
    audio, marks = espeak_16k(text)
    animator = fused()
    animator.add_text(text, final=True)
    frames = stream(animator, audio)
    closed = {f.t_samples for f in frames if int(np.argmax(f.weights)) == VISEME_INDEX["PP"]}
    bilabials = [offset for offset, symbol in marks if symbol.lstrip("',") in ("m", "b", "p")]
    for offset in bilabials:
        assert any(abs(t - offset) <= 0.06 * 16000 for t in closed), f"no closed lips near sample {offset}"
