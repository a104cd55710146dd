"""Deterministic test signals shared by benchmarks and tests."""

from __future__ import annotations

import numpy as np

from presence.audio.pcm import Float32


def speech_like(duration_s: float, rate: int = 16_000, level: float = 0.3, seed: int = 0) -> Float32:
    """A voiced, speech-level signal (140 Hz harmonics, 4 Hz syllable modulation, light noise)
    that every VAD in presence calls speech; the same arguments give the same samples."""
    n = int(duration_s * rate)
    t = np.arange(n) / rate
    rng = np.random.default_rng(seed)
    voice = np.zeros(n)
    for k in range(1, 6):
        voice += np.sin(2 * np.pi * 140 * k * t) / k
    signal = voice * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)) + 0.05 * rng.standard_normal(n)
    peak = float(np.max(np.abs(signal))) if n else 1.0
    out: Float32 = (level * signal / peak).astype(np.float32)
    return out


def silence(duration_s: float, rate: int = 16_000) -> Float32:
    return np.zeros(int(duration_s * rate), dtype=np.float32)
