"""Level-independent log-mel features for the audio-driven animator, streamed or in one go.

Analysis frames are 25 ms Hann windows every 10 ms, centred on multiples of the hop from
the reply's first sample. Mel bands cover 60–7600 Hz, so any rate from 16 kHz up gives the
same features and the animator needs no resampler (and none of its delay). Features are
log-mel energies relative to a decaying peak of the frame level, so a reply at −40 dBFS
and one at −6 dBFS look alike, while pauses stay clearly below speech; a DC blocker runs
first. A second copy of the bands has the running mean spectrum of the speech so far
subtracted (cepstral mean normalisation, causally): it removes the microphone's and the
voice's long-term colouring, which differ most between synthetic and recorded speech.
``FeatureStream`` and ``features_of`` give identical numbers for the same audio, so
the trainer computes exactly what the animator will see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter, lfilter_zi

HOP_MS: Final = 10
WINDOW_MS: Final = 25
N_MELS: Final = 32
F_MIN_HZ: Final = 60.0
F_MAX_HZ: Final = 7600.0
PEAK_DECAY_DB: Final = 0.3  # per hop: the level reference forgets a loud peak at 30 dB/s
PEAK_MIN_DB: Final = -60.0  # the reference never sinks below this: silence stays far under it
FLOOR_DB: Final = -80.0  # features are clamped this far below the peak
SILENT_DB: Final = -70.0  # absolute frame level under which the mouth is simply at rest
SPEECH_REL_DB: Final = -35.0  # frames this close to the peak update the spectral mean
MEAN_FRAMES: Final = 150  # the spectral mean averages about the last 1.5 s of speech
N_FEATURES: Final = 2 * N_MELS + 2
_DC_POLE: Final = 0.995

Matrix = npt.NDArray[np.float32]


def _mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


@dataclass(frozen=True, slots=True)
class Geometry:
    """Framing for one sample rate."""

    sample_rate: int
    hop: int
    window: int
    n_fft: int
    hann: npt.NDArray[np.float64]
    mel_bank: npt.NDArray[np.float64]  # (bins, mels)

    @classmethod
    def for_rate(cls, sample_rate: int) -> Geometry:
        hop = round(sample_rate * HOP_MS / 1000)
        window = round(sample_rate * WINDOW_MS / 1000)
        n_fft = 1 << (window - 1).bit_length()
        bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
        top = min(F_MAX_HZ, sample_rate / 2 - 1)
        edges = _hz(np.linspace(_mel(np.array(F_MIN_HZ)), _mel(np.array(top)), N_MELS + 2))
        bank = np.zeros((len(bins), N_MELS))
        for m in range(N_MELS):
            lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
            rising = (bins - lo) / max(mid - lo, 1e-9)
            falling = (hi - bins) / max(hi - mid, 1e-9)
            bank[:, m] = np.clip(np.minimum(rising, falling), 0.0, None)
        bank /= np.maximum(bank.sum(axis=0, keepdims=True), 1e-9)
        return cls(sample_rate, hop, window, n_fft, np.hanning(window).astype(np.float64), bank)


class FeatureStream:
    """Feed audio in any pieces; take out feature rows as their windows complete.

    Row ``j`` describes the window centred on sample ``j * hop`` of the stream (audio before
    sample 0 counts as silence). Each row is ``N_MELS`` band levels relative to the running
    peak, the same bands relative to the running mean spectrum, the frame level relative
    to the peak, and the absolute frame level in dBFS (always last).
    """

    def __init__(self, sample_rate: int) -> None:
        self.geometry = Geometry.for_rate(sample_rate)
        self._zi = lfilter_zi([1.0, -1.0], [1.0, -_DC_POLE]) * 0.0
        half = self.geometry.window // 2
        self._audio = np.zeros(half, dtype=np.float64)  # silence before the first sample
        self._audio_start = -half  # stream sample of self._audio[0]
        self._next_row = 0
        self._peak_db = PEAK_MIN_DB
        self._mean_db: npt.NDArray[np.float64] | None = None
        self._mean_frames = 0

    @property
    def rows_done(self) -> int:
        return self._next_row

    def push(self, samples: npt.NDArray[np.floating]) -> Matrix:
        clean = np.nan_to_num(np.asarray(samples, dtype=np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
        clean = np.clip(clean, -1.0, 1.0)
        filtered, self._zi = lfilter([1.0, -1.0], [1.0, -_DC_POLE], clean, zi=self._zi)
        self._audio = np.concatenate([self._audio, filtered])
        return self._rows()

    def finish(self) -> Matrix:
        """Rows for the windows still open, with silence after the last sample."""
        self._audio = np.concatenate([self._audio, np.zeros(self.geometry.window, dtype=np.float64)])
        return self._rows()

    def _rows(self) -> Matrix:
        g = self.geometry
        half = g.window // 2
        end = self._audio_start + len(self._audio)
        # Row j's window is [j*hop - half, j*hop - half + window): complete once that is in.
        count = max((end + half - g.window) // g.hop - self._next_row + 1, 0)
        rows = np.zeros((count, N_FEATURES), dtype=np.float32)
        if count:
            starts = (self._next_row + np.arange(count)) * g.hop - half - self._audio_start
            index = starts[:, None] + np.arange(g.window)[None, :]
            frames = self._audio[index] * g.hann[None, :]
            power = np.abs(np.fft.rfft(frames, n=g.n_fft, axis=1)) ** 2
            mel_db = 10.0 * np.log10(power @ g.mel_bank + 1e-20)
            level_db = 10.0 * np.log10(np.mean(np.square(self._audio[index]), axis=1) + 1e-20)
            for r in range(count):
                self._peak_db = max(float(level_db[r]), self._peak_db - PEAK_DECAY_DB, PEAK_MIN_DB)
                relative = max(level_db[r] - self._peak_db, FLOOR_DB)
                bands = np.maximum(mel_db[r] - self._peak_db, FLOOR_DB)
                if relative > SPEECH_REL_DB:
                    self._mean_frames = min(self._mean_frames + 1, MEAN_FRAMES)
                    if self._mean_db is None:
                        self._mean_db = bands.copy()
                    self._mean_db += (bands - self._mean_db) / self._mean_frames
                rows[r, :N_MELS] = bands
                rows[r, N_MELS : 2 * N_MELS] = bands - (self._mean_db if self._mean_db is not None else bands)
                rows[r, 2 * N_MELS] = relative
                rows[r, 2 * N_MELS + 1] = max(level_db[r], -100.0)
            self._next_row += count
        keep_from = max(self._next_row * g.hop - half - self._audio_start, 0)
        self._audio = self._audio[keep_from:]
        self._audio_start += keep_from
        return rows


def features_of(audio: npt.NDArray[np.floating], sample_rate: int) -> Matrix:
    """All rows for a whole recording: row ``j`` centred on sample ``j * hop``."""
    stream = FeatureStream(sample_rate)
    head = stream.push(audio)
    tail = stream.finish()
    n_rows = -(-len(audio) // stream.geometry.hop)
    return np.concatenate([head, tail])[:n_rows]
