"""Audio-driven animators (AudioAnimator and its fallback MlpAnimator): viseme frames from reply
audio alone, streaming, with bounded look-ahead. Contract tests run on both."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from presence.audio.espeak import Espeak, Voice
from presence.lipsync import ANIMATOR_KINDS, AlignedAnimator, create_animator
from presence.lipsync.acoustic import AudioAnimator
from presence.lipsync.audio import MlpAnimator, model_path
from presence.lipsync.base import VISEME_INDEX, Animator, VisemeFrame, rest_weights
from presence.lipsync.features import FeatureStream, features_of
from presence.lipsync.phonemes import weights_of
from presence.media import AudioChunk

AudioAnimatorFactory = Callable[..., AudioAnimator | MlpAnimator]
KINDS = {"acoustic": AudioAnimator, "mlp": MlpAnimator}


@pytest.fixture(params=sorted(KINDS))
def make(request: pytest.FixtureRequest) -> AudioAnimatorFactory:
    factory: AudioAnimatorFactory = KINDS[request.param]
    return factory


def run(animator: Animator, audio: np.ndarray, chunk: int, start: int = 0) -> list[VisemeFrame]:
    frames: list[VisemeFrame] = []
    for i in range(0, len(audio), chunk):
        frames += animator.push(AudioChunk(1, audio[i : i + chunk], animator.sample_rate), start + i)
    return frames + animator.flush()


def test_the_trained_model_ships_with_the_package_and_is_small() -> None:
    assert model_path().exists()
    assert model_path().stat().st_size < 2 * 1024 * 1024


def test_look_ahead_is_within_thirty_milliseconds(make: AudioAnimatorFactory) -> None:
    for rate in (16000, 24000, 48000):
        assert make(rate).lookahead_samples <= 0.030 * rate


def test_features_are_the_same_streamed_in_any_pieces_or_computed_at_once() -> None:
    rng = np.random.default_rng(3)
    audio = (rng.standard_normal(24000) * 0.1).astype(np.float32)
    stream = FeatureStream(24000)
    rows = []
    i = 0
    while i < len(audio):
        n = int(rng.integers(1, 3000))
        rows.append(stream.push(audio[i : i + n]))
        i += n
    rows.append(stream.finish())
    whole = features_of(audio, 24000)
    assert np.array_equal(np.concatenate(rows)[: len(whole)], whole)


def test_features_do_not_depend_on_loudness_once_the_level_is_tracked() -> None:
    speech = Espeak.instance().synthesize("Loudness should not change the mouth.", Voice("en-us"))
    loud = features_of(speech.samples * 0.9, speech.sample_rate)[20:, :-1]
    quiet = features_of(speech.samples * 0.9 * 10 ** (-30 / 20), speech.sample_rate)[20:, :-1]
    assert np.abs(loud - quiet).max() < 1.0


def test_frames_are_emitted_only_once_their_look_ahead_has_arrived(make: AudioAnimatorFactory) -> None:
    animator = make(24000, fps=60)
    audio = np.zeros(24000, dtype=np.float32)
    received = 0
    for i in range(0, len(audio), 480):
        piece = audio[i : i + 480]
        frames = animator.push(AudioChunk(1, piece, 24000), 1000 + i)
        received += len(piece)
        assert all(f.t_samples + animator.lookahead_samples <= 1000 + received for f in frames)


def test_frames_sit_on_the_grid_without_gaps_and_the_reply_ends_at_rest(make: AudioAnimatorFactory) -> None:
    speech = Espeak.instance().synthesize("Hello there, how are you?", Voice("en-us"))
    animator = make(speech.sample_rate, fps=60)
    frames = run(animator, speech.samples, 1323, start=777)
    instants = np.array([f.t_samples for f in frames])
    assert instants[0] == animator.grid.first_at_or_after(777)
    assert np.all(np.diff(instants) == animator.grid.step)
    assert instants[-1] >= 777 + len(speech.samples)
    assert np.array_equal(frames[-1].weights, rest_weights())


def test_chunk_size_does_not_change_the_animation(make: AudioAnimatorFactory) -> None:
    speech = Espeak.instance().synthesize("Pick a peck of pickled peppers.", Voice("en-us"))
    small = weights_of(run(make(speech.sample_rate), speech.samples, 160))
    large = weights_of(run(make(speech.sample_rate), speech.samples, 4410))
    assert np.allclose(small, large, atol=1e-5)


def test_speech_opens_the_mouth_and_silence_keeps_it_at_rest(make: AudioAnimatorFactory) -> None:
    speech = Espeak.instance().synthesize("Father saw a large cart.", Voice("en-us"))
    rate = speech.sample_rate
    audio = np.concatenate([np.zeros(rate // 2, np.float32), speech.samples, np.zeros(rate // 2, np.float32)])
    weights = weights_of(run(make(rate), audio, 1323))
    sil = weights[:, VISEME_INDEX["sil"]]
    assert sil[:20].min() > 0.9  # the leading half second of digital silence
    assert (sil < 0.5).mean() > 0.3  # speech moves the mouth most of the time


def test_a_new_start_sample_begins_a_new_reply(make: AudioAnimatorFactory) -> None:
    animator = make(16000)
    animator.push(AudioChunk(1, np.zeros(1600, np.float32), 16000), 0)
    frames = animator.push(AudioChunk(2, np.zeros(3200, np.float32), 16000), 90_000)
    assert frames and frames[0].t_samples >= 90_000


def test_create_animator_builds_every_kind() -> None:
    for kind in ANIMATOR_KINDS:
        assert create_animator(kind, 24000, 60).fps == 60
    assert isinstance(create_animator("audio-causal", 24000, 60), AudioAnimator)
    assert isinstance(create_animator("audio", 24000, 60), AlignedAnimator)
    assert isinstance(create_animator("transcript", 24000, 60), AlignedAnimator)
    with pytest.raises(ValueError, match="unknown animator"):
        create_animator("magic", 24000, 60)


def bad_audio(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "silence":
        return np.zeros(n, np.float32)
    if kind == "clipped":
        return np.clip(rng.standard_normal(n) * 5, -1, 1).astype(np.float32)
    if kind == "dc":
        return np.full(n, 0.4, np.float32) + rng.standard_normal(n).astype(np.float32) * 0.001
    if kind == "tiny":
        return (rng.standard_normal(n) * 1e-6).astype(np.float32)
    if kind == "nan":
        out = rng.standard_normal(n).astype(np.float32) * 0.1
        out[:: max(n // 7, 1)] = np.nan
        out[1 :: max(n // 5, 1)] = np.inf
        return out
    return (rng.standard_normal(n) * 0.3).astype(np.float32)  # noise


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from(sorted(KINDS)),
    st.sampled_from(["silence", "clipped", "dc", "tiny", "nan", "noise"]),
    st.sampled_from([16000, 22050, 24000, 48000]),
    st.integers(1, 9000),
    st.integers(1, 5000),
    st.integers(0, 2**31),
)
def test_any_audio_gives_finite_weights_in_unit_range(
    animator_kind: str, kind: str, rate: int, n: int, chunk: int, seed: int
) -> None:
    animator = KINDS[animator_kind](rate)
    weights = weights_of(run(animator, bad_audio(kind, n, np.random.default_rng(seed)), chunk))
    assert np.isfinite(weights).all() and (weights >= 0).all() and (weights <= 1).all()


def test_digital_silence_and_dc_keep_the_mouth_at_rest(make: AudioAnimatorFactory) -> None:
    rng = np.random.default_rng(1)
    for kind in ("silence", "tiny"):
        weights = weights_of(run(make(24000), bad_audio(kind, 24000, rng), 480))
        assert weights[:, VISEME_INDEX["sil"]].min() > 0.99, kind
