"""PhonemeAnimator: phoneme marks → coarticulated viseme frames on the output timeline."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from presence.audio.espeak import Espeak, Voice
from presence.lipsync.base import VISEME_INDEX, VISEMES, VisemeFrame, rest_weights
from presence.lipsync.phonemes import PhonemeAnimator, weights_of
from presence.media import AudioChunk, PhonemeMark

RATE = 24000
MS = RATE // 1000


def chunk(length_ms: int, marks: list[tuple[int, str]], alphabet: str = "espeak") -> AudioChunk:
    samples = np.zeros(length_ms * MS, dtype=np.float32)
    return AudioChunk(1, samples, RATE, tuple(PhonemeMark(t * MS, p, alphabet) for t, p in marks))


def run(animator: PhonemeAnimator, chunks: list[AudioChunk], start: int = 0) -> list[VisemeFrame]:
    frames: list[VisemeFrame] = []
    for c in chunks:
        frames += animator.push(c, start)
        start += len(c.samples)
    return frames + animator.flush()


def at(frames: list[VisemeFrame], t_ms: int, viseme: str) -> float:
    frame = min(frames, key=lambda f: abs(f.t_samples - t_ms * MS))
    return float(frame.weights[VISEME_INDEX[viseme]])


def dominant(frames: list[VisemeFrame], t_ms: int) -> str:
    frame = min(frames, key=lambda f: abs(f.t_samples - t_ms * MS))
    return VISEMES[int(np.argmax(frame.weights))]


APA = [(0, "_"), (100, "'a"), (300, "p"), (360, "a"), (600, "_:")]


def test_frames_sit_on_the_frame_grid_of_the_callers_timeline_and_end_at_rest() -> None:
    animator = PhonemeAnimator(RATE, fps=60)
    frames = run(animator, [chunk(700, APA)], start=12345)
    step = RATE // 60
    instants = [f.t_samples for f in frames]
    assert all(t % step == 0 for t in instants)
    assert instants[0] == -(-12345 // step) * step
    assert np.all(np.diff(instants) == step)
    assert instants[-1] >= 12345 + 700 * MS
    assert np.array_equal(frames[-1].weights, rest_weights())


def test_the_mouth_opens_on_a_vowel_and_closes_for_p_before_its_burst_mark() -> None:
    frames = run(PhonemeAnimator(RATE), [chunk(700, APA)])
    assert dominant(frames, 200) == "aa"
    assert dominant(frames, 280) == "PP"  # 20 ms before eSpeak's burst mark: lips already shut
    assert at(frames, 280, "PP") > 0.5
    assert dominant(frames, 450) == "aa"


def test_visemes_blend_instead_of_switching_and_the_next_one_is_anticipated() -> None:
    frames = run(PhonemeAnimator(RATE), [chunk(700, [(0, "_"), (100, "'a"), (300, "u:"), (600, "_:")])])
    weights = weights_of(frames)
    assert np.abs(np.diff(weights, axis=0)).max() < 0.5
    assert 0 < at(frames, 285, "ou") < 0.5  # moving toward 'oo' before its mark
    assert 0 < at(frames, 320, "aa") < 0.5  # 'a' lingers after it


def test_a_diphthong_glides_toward_its_second_element_but_keeps_its_onset() -> None:
    frames = run(PhonemeAnimator(RATE), [chunk(600, [(0, "_"), (100, "'aI"), (500, "_:")])])
    assert at(frames, 110, "ih") < 0.05
    assert at(frames, 400, "ih") > 0.3
    assert dominant(frames, 400) == "aa"


def test_no_frame_is_emitted_before_the_audio_covering_it_arrives() -> None:
    animator = PhonemeAnimator(RATE)
    frames = animator.push(chunk(100, [(0, "_"), (50, "'a")]), 0)
    assert frames and all(f.t_samples < 100 * MS for f in frames)
    more = animator.push(chunk(100, [(30, "m")]), 100 * MS)
    assert all(100 * MS <= f.t_samples < 200 * MS for f in more)
    assert frames[-1].t_samples + animator.grid.step == more[0].t_samples


def test_holdback_lets_a_closure_reach_back_across_a_chunk_boundary() -> None:
    marks_a, marks_b = [(0, "_"), (50, "'a")], [(20, "p"), (80, "a")]
    eager = run(PhonemeAnimator(RATE), [chunk(100, marks_a), chunk(200, marks_b)])
    patient_animator = PhonemeAnimator(RATE, holdback_ms=50)
    assert patient_animator.lookahead_samples == 50 * MS
    patient = run(patient_animator, [chunk(100, marks_a), chunk(200, marks_b)])
    assert at(patient, 84, "PP") > at(eager, 84, "PP")  # the frame before the boundary
    assert dominant(patient, 84) == "PP"


def test_chunking_changes_only_frames_near_chunk_ends() -> None:
    marks = [(0, "_"), (40, "h"), (90, "@"), (160, "l"), (230, "'oU"), (520, "_:")]
    whole = run(PhonemeAnimator(RATE), [chunk(600, marks)])
    pieces = [chunk(200, [(t - start, p) for t, p in marks if start <= t < start + 200]) for start in (0, 200, 400)]
    split = run(PhonemeAnimator(RATE), pieces)
    assert [f.t_samples for f in whole] == [f.t_samples for f in split]
    for a, b in zip(whole, split, strict=True):
        near_end = any(0 <= end * MS - a.t_samples < 45 * MS for end in (200, 400))
        if not near_end:
            assert np.allclose(a.weights, b.weights)


def test_reset_forgets_the_reply_and_a_new_start_begins_a_new_one() -> None:
    animator = PhonemeAnimator(RATE)
    animator.push(chunk(100, [(0, "'a")]), 0)
    animator.reset()
    assert animator.flush() == []
    frames = animator.push(chunk(100, [(0, "_"), (10, "m")]), 50_000)
    assert frames[0].t_samples >= 50_000
    assert dominant(frames, 50_000 // MS + 60) == "PP"


def test_arpabet_marks_and_unknown_symbols_animate_without_error() -> None:
    frames = run(PhonemeAnimator(RATE), [chunk(400, [(0, "SIL"), (50, "M"), (150, "AA1"), (300, "??x")], "arpabet")])
    assert dominant(frames, 120) == "PP"
    assert dominant(frames, 250) == "aa"


def test_espeak_speech_closes_the_lips_for_every_bilabial() -> None:
    speech = Espeak.instance().synthesize("Bob may buy a pepper mill.", Voice("en-us"))
    rate = speech.sample_rate
    animator = PhonemeAnimator(rate)
    frames: list[VisemeFrame] = []
    step = round(0.06 * rate)  # the library's own chunk size
    for start in range(0, len(speech.samples), step):
        marks = tuple(
            PhonemeMark(p.offset - start, p.symbol) for p in speech.phonemes if start <= p.offset < start + step
        )
        frames += animator.push(AudioChunk(1, speech.samples[start : start + step], rate, marks), start)
    frames += animator.flush()
    bilabials = [p.offset for p in speech.phonemes if p.symbol.lstrip("',") in {"b", "p", "m"}]
    assert len(bilabials) >= 6
    pp = VISEME_INDEX["PP"]
    for offset in bilabials:
        near = [f.weights[pp] for f in frames if abs(f.t_samples - offset) <= 0.05 * rate]
        assert max(near) > 0.5, offset


symbols = st.sampled_from(["_", "_:", "p", "b", "m", "'a", ",aI", "u:", "s", "T", "tS", "k", ";", "zz", ""])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 3000), st.lists(st.tuples(st.integers(-50, 3000), symbols), max_size=4)), max_size=8
    ),
    st.integers(0, 10**7),
    st.sampled_from([24000, 16000, 48000, 22050]),
    st.sampled_from([25, 30, 60]),
)
def test_any_marks_give_finite_weights_in_unit_range_on_a_rising_grid(
    pieces: list[tuple[int, list[tuple[int, str]]]], start: int, rate: int, fps: int
) -> None:
    animator = PhonemeAnimator(rate, fps)
    frames: list[VisemeFrame] = []
    t = start
    for length, marks in pieces:
        samples = np.zeros(length, dtype=np.float32)
        c = AudioChunk(1, samples, rate, tuple(PhonemeMark(o, p) for o, p in marks))
        frames += animator.push(c, t)
        t += length
    frames += animator.flush()
    weights = weights_of(frames)
    assert np.isfinite(weights).all() and (weights >= 0).all() and (weights <= 1).all()
    assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    assert all(np.diff([f.t_samples for f in frames]) > 0)
