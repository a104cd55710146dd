"""Phoneme-driven visemes: the engine's phoneme marks → coarticulated viseme frames.

The marks become a *target track*: from each mark on, the mouth aims at the phone's
viseme (a diphthong glides part-way to its second element). Frames are a weighted average
of that track over a window around the frame instant, reaching ``anticipation_ms`` into
the future (the lips move before the sound) and ``carryover_ms`` into the past (and
linger after it): blends rather than hard switches, and weights that always sum to one.

eSpeak NG marks a stop (p b t d k g, ch j) at its burst, but its closure, about 45 ms of
near silence, lies before the mark inside the previous phone: the stop's target therefore
starts ``closure_ms`` before its mark, never taking more than 60% of the previous phone.

The window cannot see marks that have not arrived: a frame is emitted as soon as the audio
covering it (plus ``holdback_ms``, 0 by default) is in, and its window is cut at the end
of that audio. ``holdback_ms`` of about 50 lets closures and anticipation cross chunk
boundaries at the cost of that much look-ahead.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from presence.lipsync.base import (
    VISEME_INDEX,
    VISEMES,
    FrameGrid,
    StreamingDefaults,
    VisemeFrame,
    Weights,
    rest_weights,
)
from presence.lipsync.phones import SILENCE, PhoneShape, phone_shape
from presence.media import AudioChunk

_SIL = VISEME_INDEX[SILENCE]
_NO_GLIDE = -1


@dataclass(frozen=True, slots=True)
class _Key:
    """A phone's mark on the output timeline."""

    t_samples: int
    shape: PhoneShape


class PhonemeAnimator(StreamingDefaults):
    """Animator from ``AudioChunk.phonemes``; the audio itself is only used as a clock."""

    def __init__(
        self,
        sample_rate: int,
        fps: int = 60,
        *,
        anticipation_ms: float = 40.0,
        carryover_ms: float = 60.0,
        closure_ms: float = 45.0,
        glide_start_ms: float = 50.0,
        glide_ms: float = 100.0,
        glide_max: float = 0.45,
        holdback_ms: float = 0.0,
        tap_ms: float = 5.0,
    ) -> None:
        self.sample_rate = sample_rate
        self.fps = fps
        self.grid = FrameGrid(sample_rate, fps)
        self.lookahead_samples = round(holdback_ms * sample_rate / 1000)
        ms = sample_rate / 1000.0
        self._closure = round(closure_ms * ms)
        self._glide_start = glide_start_ms * ms
        self._glide_len = max(glide_ms * ms, 1.0)
        self._glide_max = glide_max
        # Kernel taps: offsets from the frame instant and triangular weights.
        future = np.arange(0.0, anticipation_ms + 1e-9, tap_ms)
        past = np.arange(-tap_ms, -carryover_ms - 1e-9, -tap_ms)
        offsets_ms = np.concatenate([past[::-1], future])
        weights = np.where(
            offsets_ms >= 0,
            1.0 - offsets_ms / (anticipation_ms + tap_ms),
            1.0 + offsets_ms / (carryover_ms + tap_ms),
        )
        self._tap_offsets = np.round(offsets_ms * ms).astype(np.int64)
        self._tap_weights = weights.astype(np.float64)
        self._past_reach = int(-self._tap_offsets.min())
        self.reset()

    def reset(self) -> None:
        self._keys: list[_Key] = []
        self._audio_end: int | None = None
        self._next_frame: int | None = None

    def push(self, chunk: AudioChunk, start_sample: int) -> list[VisemeFrame]:
        if self._audio_end is None or start_sample != self._audio_end:
            self.reset()
            self._next_frame = self.grid.first_at_or_after(start_sample)
        for mark in chunk.phonemes:
            shape = phone_shape(mark.phoneme, mark.alphabet)
            if shape is not None:
                key = _Key(start_sample + mark.offset_samples, shape)
                bisect.insort(self._keys, key, key=lambda k: k.t_samples)
        self._audio_end = start_sample + len(chunk.samples)
        return self._emit(until=self._audio_end - self.lookahead_samples, horizon=self._audio_end)

    def flush(self) -> list[VisemeFrame]:
        """Emit what is held back, then let the mouth settle to rest after the audio ends."""
        if self._audio_end is None or self._next_frame is None:
            self.reset()
            return []
        end = self._audio_end
        self._keys.append(_Key(end, PhoneShape(SILENCE)))
        frames = self._emit(until=end + self._past_reach, horizon=None)
        assert self._next_frame is not None
        frames.append(VisemeFrame(self._next_frame, rest_weights()))
        self.reset()
        return frames

    def _emit(self, until: int, horizon: int | None) -> list[VisemeFrame]:
        """Frames at grid instants < ``until``; the track is unknown at and after ``horizon``."""
        assert self._next_frame is not None
        if self._next_frame >= until:
            return []
        instants = np.arange(self._next_frame, until, self.grid.step, dtype=np.int64)
        self._next_frame = int(instants[-1]) + self.grid.step
        weights = self._weights_at(instants, horizon)
        self._forget_before(self._next_frame - self._past_reach)
        return [VisemeFrame(int(t), w) for t, w in zip(instants, weights, strict=True)]

    def _weights_at(self, instants: npt.NDArray[np.int64], horizon: int | None) -> npt.NDArray[np.float32]:
        times = instants[:, None] + self._tap_offsets[None, :]  # (frames, taps)
        taps = np.broadcast_to(self._tap_weights, times.shape).copy()
        if horizon is not None:
            taps[times >= horizon] = 0.0
        track = self._track(times)  # (frames, taps, visemes)
        total = taps.sum(axis=1, keepdims=True)
        mixed = np.einsum("ft,ftv->fv", taps, track) / np.maximum(total, 1e-12)
        # A frame with no usable tap (cannot happen for frames inside the audio) rests.
        mixed[total[:, 0] <= 0] = rest_weights()
        out: npt.NDArray[np.float32] = np.clip(mixed, 0.0, 1.0).astype(np.float32)
        return out

    def _track(self, times: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Target weights at each time: onset viseme, partly glided, silence before any mark."""
        starts, onsets, glides = self._segments()
        track = np.zeros((*times.shape, len(VISEMES)), dtype=np.float64)
        index = np.searchsorted(starts, times, side="right") - 1
        before = index < 0
        safe = np.maximum(index, 0)
        onset = np.where(before, _SIL, onsets[safe] if len(onsets) else _SIL)
        glide = np.where(before, _NO_GLIDE, glides[safe] if len(glides) else _NO_GLIDE)
        since = times - (starts[safe] if len(starts) else 0)
        amount = np.clip((since - self._glide_start) / self._glide_len, 0.0, 1.0) * self._glide_max
        amount = np.where(glide >= 0, amount, 0.0)
        np.put_along_axis(track, onset[..., None], (1.0 - amount)[..., None], axis=-1)
        has_glide = glide >= 0
        glide_cells = track[has_glide]
        glide_cells[np.arange(len(glide_cells)), glide[has_glide]] += amount[has_glide]
        track[has_glide] = glide_cells
        return track

    def _segments(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Segment starts (stops moved back over their closure), onset and glide indices."""
        starts: list[int] = []
        for i, key in enumerate(self._keys):
            start = key.t_samples
            if key.shape.stop and i > 0:
                previous = self._keys[i - 1]
                span = key.t_samples - previous.t_samples
                floor = previous.t_samples if previous.shape.onset == SILENCE else previous.t_samples + 0.4 * span
                floor = max(floor, starts[-1] if starts else floor)
                start = max(key.t_samples - self._closure, int(np.ceil(floor)))
            elif key.shape.stop:
                start = key.t_samples - self._closure
            starts.append(start)
        onsets = [VISEME_INDEX[k.shape.onset] for k in self._keys]
        glides = [VISEME_INDEX[k.shape.glide] if k.shape.glide else _NO_GLIDE for k in self._keys]
        return (
            np.asarray(starts, dtype=np.int64),
            np.asarray(onsets, dtype=np.int64),
            np.asarray(glides, dtype=np.int64),
        )

    def _forget_before(self, t_samples: int) -> None:
        """Drop keys whose segment ended before ``t_samples`` (one earlier key stays for stops)."""
        keep_from = bisect.bisect_right(self._keys, t_samples, key=lambda k: k.t_samples) - 2
        if keep_from > 0:
            del self._keys[:keep_from]


def weights_of(frames: list[VisemeFrame]) -> Weights:
    """Stack frames' weights (frames × 15), for analysis and tests."""
    if not frames:
        return np.zeros((0, len(VISEMES)), dtype=np.float32)
    stacked: Weights = np.stack([f.weights for f in frames])
    return stacked
