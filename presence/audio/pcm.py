"""PCM conversions and resampling: the only place sample formats change.

Inside presence, audio is mono float32 in [-1, 1]; on the wire it is little-endian s16 (or
Opus). Resampling is polyphase (scipy), exact for the rational ratios used here.
"""

from __future__ import annotations

from math import gcd

import numpy as np
import numpy.typing as npt
from scipy.signal import firwin, resample_poly

Float32 = npt.NDArray[np.float32]


def s16le_to_float(data: bytes) -> Float32:
    """Little-endian int16 bytes → float32 in [-1, 1); an odd trailing byte is an error."""
    if len(data) % 2:
        raise ValueError("s16le audio must have an even number of bytes")
    return (np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0).astype(np.float32)


def float_to_s16le(samples: npt.NDArray[np.floating]) -> bytes:
    """float → int16 bytes, clipping out-of-range values and mapping NaN to 0."""
    clean = np.nan_to_num(np.asarray(samples, dtype=np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    return (np.clip(clean, -1.0, 32767 / 32768) * 32768.0).round().astype("<i2").tobytes()


def resample(samples: npt.NDArray[np.floating], from_hz: int, to_hz: int) -> Float32:
    """One-shot resampling of a whole signal (files, tests). Streams use ``StreamResampler``."""
    if from_hz == to_hz:
        return np.asarray(samples, dtype=np.float32)
    g = gcd(from_hz, to_hz)
    return np.asarray(resample_poly(samples, to_hz // g, from_hz // g), dtype=np.float32)


class StreamResampler:
    """Chunk-by-chunk resampling with no seams: keeps the filter's history between chunks.

    Output is delayed by a fixed ``delay_samples`` (at the output rate), which callers subtract
    when they stamp timestamps. Implemented as overlap-save around ``resample_poly``.
    """

    def __init__(self, from_hz: int, to_hz: int) -> None:
        g = gcd(from_hz, to_hz)
        self.up, self.down = to_hz // g, from_hz // g
        self.from_hz, self.to_hz = from_hz, to_hz
        # The overlap must cover the filter on both sides of the kept output: the filter spans
        # 10·max(up, down) samples each way at the upsampled rate, i.e. that / up input samples.
        # It must also be a multiple of `down` so output samples stay on the same grid.
        reach_in = -(-10 * max(self.up, self.down) // self.up)
        history_in = 2 * reach_in + 2
        self.history = -(-history_in // self.down) * self.down
        self._tail = np.zeros(self.history, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        # Each block re-filters `history` old input samples (`history_out` at the output rate)
        # and keeps the output from the middle of that overlap on: the rest is the delay.
        # Equal rates pass audio through untouched and add none.
        history_out = self.history * self.up // self.down
        self._skip_head = history_out // 2
        self.delay_samples = 0 if self.up == self.down else history_out - self._skip_head
        # The same low-pass resample_poly would design, designed once: doing it per call cost
        # ten times the filtering itself (422 µs per 20 ms chunk at 22.05 → 24 kHz).
        max_rate = max(self.up, self.down)
        self._filter = firwin(2 * 10 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0)) if max_rate > 1 else None

    def process(self, chunk: npt.NDArray[np.floating]) -> Float32:
        if self.up == self.down:
            return np.asarray(chunk, dtype=np.float32)
        data = np.concatenate([self._pending, np.asarray(chunk, dtype=np.float32)])
        usable = len(data) // self.down * self.down
        self._pending = data[usable:]
        if usable == 0:
            return np.zeros(0, dtype=np.float32)
        block = np.concatenate([self._tail, data[:usable]])
        out = resample_poly(block, self.up, self.down, window=self._filter)
        keep = usable * self.up // self.down
        self._tail = block[-self.history :]
        return np.asarray(out[self._skip_head : self._skip_head + keep], dtype=np.float32)

    def flush(self) -> Float32:
        """End of stream: the last ``delay_samples`` still held by the filter (plus any
        input that did not fill a whole resampling period)."""
        if self.up == self.down:
            return np.zeros(0, dtype=np.float32)
        pending = len(self._pending)
        out = self.process(np.zeros(self.history + (-pending % self.down), dtype=np.float32))
        wanted = self.delay_samples + pending * self.up // self.down
        return out[:wanted]
