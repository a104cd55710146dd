"""PCM conversion and streaming resampling: chunking never changes the result."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from presence.audio.pcm import StreamResampler, float_to_s16le, resample, s16le_to_float

RATES = [8000, 16000, 22050, 24000, 44100, 48000]


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(RATES),
    st.sampled_from(RATES),
    st.lists(st.integers(1, 900), min_size=1, max_size=12),
    st.integers(0, 2**31),
)
def test_streaming_resampler_matches_one_shot_resampling_for_any_chunking(
    from_hz: int, to_hz: int, chunks: list[int], seed: int
) -> None:
    signal = np.random.default_rng(seed).uniform(-0.5, 0.5, sum(chunks) + 2000).astype(np.float32)
    resampler = StreamResampler(from_hz, to_hz)
    pieces, start = [], 0
    for size in [*chunks, 2000]:
        pieces.append(resampler.process(signal[start : start + size]))
        start += size
    pieces.append(resampler.flush())
    streamed = np.concatenate(pieces)[resampler.delay_samples :]
    reference = resample(signal, from_hz, to_hz)
    n = min(len(streamed), len(reference)) - 64  # the one-shot version's own end effects
    assert abs(len(streamed) - len(reference)) <= 1
    assert np.allclose(streamed[:n], reference[:n], atol=1e-5)


@given(st.lists(st.floats(-2, 2) | st.sampled_from([float("nan"), float("inf"), -float("inf")]), max_size=50))
def test_float_to_pcm_clips_and_never_wraps(values: list[float]) -> None:
    pcm = s16le_to_float(float_to_s16le(np.asarray(values, dtype=np.float32)))
    assert np.all(np.isfinite(pcm)) and np.all(np.abs(pcm) <= 1.0)
    for value, back in zip(values, pcm, strict=True):
        if np.isfinite(value) and abs(value) < 0.99:
            assert abs(back - value) <= 1 / 32768 + 1e-6
        elif value >= 1:
            assert back > 0.999
