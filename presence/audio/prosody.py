"""Prosody at the end of a stretch of speech: is the pitch falling and the voice fading?

Read speech and conversation both mark the end of a sentence with a pitch fall to the bottom
of the speaker's range and a decay in loudness; a pause in mid-sentence usually keeps the
pitch up (continuation). ``ProsodyTracker`` follows one speaker window by window and, when
a pause begins, summarises the last few hundred milliseconds of voice as a ``PauseCue``.
Pure numpy, no clocks; one tracker per session.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Final

import numpy as np

from presence.media import INPUT_SAMPLE_RATE, Samples

MIN_F0_HZ: Final = 70.0
MAX_F0_HZ: Final = 400.0
VOICING_THRESHOLD: Final = 0.45  # normalised autocorrelation peak that counts as voiced


@dataclass(frozen=True, slots=True)
class WindowProsody:
    t_samples: int
    energy_db: float
    f0_hz: float | None  # None when the window is unvoiced


def window_prosody(window: Samples, t_samples: int, rate: int = INPUT_SAMPLE_RATE) -> WindowProsody:
    """Level and pitch of one window (autocorrelation pitch; good enough for a contour)."""
    x = np.asarray(window, dtype=np.float64)
    x = x - x.mean()
    power = float(np.mean(x * x)) if len(x) else 0.0
    energy_db = 10.0 * math.log10(max(power, 1e-12))
    n = len(x)
    min_lag, max_lag = int(rate / MAX_F0_HZ), int(rate / MIN_F0_HZ)
    if n < 2 * min_lag or power <= 1e-10:
        return WindowProsody(t_samples, energy_db, None)
    max_lag = min(max_lag, n // 2)
    spectrum = np.fft.rfft(x, 2 * n)
    acf = np.fft.irfft(spectrum * np.conj(spectrum))[: max_lag + 1]
    # Unbias: a lag of k overlaps only n - k samples.
    acf = acf / (acf[0] * (n - np.arange(max_lag + 1)) / n)
    search = acf[min_lag : max_lag + 1]
    best = float(search.max())
    if best < VOICING_THRESHOLD:
        return WindowProsody(t_samples, energy_db, None)
    # A periodic signal correlates as well at two or three periods as at one: take the first
    # local peak that is nearly as good as the best, not the best (the classic octave error).
    peaks = [i for i in range(1, len(search) - 1) if search[i - 1] <= search[i] >= search[i + 1]]
    lag = min_lag + next((i for i in peaks if search[i] >= 0.9 * best), int(np.argmax(search)))
    if acf[lag] < VOICING_THRESHOLD:
        return WindowProsody(t_samples, energy_db, None)
    # Parabolic interpolation around the peak for a sub-sample lag.
    if min_lag < lag < max_lag:
        a, b, c = acf[lag - 1], acf[lag], acf[lag + 1]
        denom = a - 2 * b + c
        shift = 0.5 * (a - c) / denom if denom != 0 else 0.0
    else:
        shift = 0.0
    return WindowProsody(t_samples, energy_db, float(rate / (lag + shift)))


@dataclass(frozen=True, slots=True)
class PauseCue:
    """What the voice did just before a pause. ``finality`` in [0, 1]: 1 sounds sentence-final."""

    final_pitch_st: float | None  # last voiced pitch, semitones relative to the speaker's median
    pitch_slope_st_per_s: float | None  # over the tail of the last stretch of speech
    energy_slope_db_per_s: float | None
    finality: float

    @classmethod
    def unknown(cls) -> PauseCue:
        return cls(None, None, None, 0.5)


def _slope(ts: list[float], ys: list[float]) -> float | None:
    if len(ts) < 3 or max(ts) - min(ts) <= 0:
        return None
    return float(np.polyfit(np.asarray(ts), np.asarray(ys), 1)[0])


def _semitones(f0_hz: float, reference_hz: float) -> float:
    return 12.0 * math.log2(f0_hz / reference_hz)


@dataclass(frozen=True, slots=True)
class FinalityWeights:
    """How the cue's parts add up to a finality score (a logistic of their weighted sum).

    Set from the endpointing benchmark (TIMIT): the last voiced pitch relative to the
    speaker's median separates turn ends (median −4.2 st) from mid-sentence pauses (−0.3 st);
    the pitch and level slopes over the tail hardly did (the level falls before every pause),
    so they carry no weight by default. The score is 0.5 at 1.5 st below the median.
    """

    bias: float = -0.9
    per_st_below_median: float = 0.6
    per_st_per_s_fall: float = 0.0
    per_db_per_s_fall: float = 0.0


class ProsodyTracker:
    """Follows one speaker: a speaker pitch reference, and the tail of the current speech."""

    def __init__(self, tail_ms: int = 400, weights: FinalityWeights | None = None) -> None:
        self.tail_samples = tail_ms * INPUT_SAMPLE_RATE // 1000
        self.weights = weights or FinalityWeights()
        self._tail: deque[WindowProsody] = deque()
        self._voiced_log_f0: deque[float] = deque(maxlen=600)  # about 20 s of voiced windows

    def push_speech(self, window: Samples, t_samples: int) -> None:
        """A window the VAD called speech."""
        features = window_prosody(window, t_samples)
        self._tail.append(features)
        while self._tail and self._tail[0].t_samples < t_samples - self.tail_samples:
            self._tail.popleft()
        if features.f0_hz is not None:
            self._voiced_log_f0.append(math.log2(features.f0_hz))

    def cue(self) -> PauseCue:
        """Summarise the tail of speech before the pause that is beginning now."""
        voiced = [w for w in self._tail if w.f0_hz is not None]
        if not self._tail or not self._voiced_log_f0:
            return PauseCue.unknown()
        reference_hz = 2.0 ** float(np.median(np.asarray(self._voiced_log_f0)))
        seconds = [w.t_samples / INPUT_SAMPLE_RATE for w in self._tail]
        energy_slope = _slope(seconds, [w.energy_db for w in self._tail])
        final_st: float | None = None
        pitch_slope: float | None = None
        if voiced:
            last = voiced[-min(3, len(voiced)) :]
            final_st = float(np.mean([_semitones(w.f0_hz or reference_hz, reference_hz) for w in last]))
            pitch_slope = _slope(
                [w.t_samples / INPUT_SAMPLE_RATE for w in voiced],
                [_semitones(w.f0_hz or reference_hz, reference_hz) for w in voiced],
            )
        w = self.weights
        z = w.bias
        z += -w.per_st_below_median * (final_st or 0.0)
        z += -w.per_st_per_s_fall * (pitch_slope or 0.0)
        z += -w.per_db_per_s_fall * (energy_slope or 0.0)
        finality = 1.0 / (1.0 + math.exp(-z))
        return PauseCue(final_st, pitch_slope, energy_slope, finality)

    def reset(self) -> None:
        self._tail.clear()
        self._voiced_log_f0.clear()
