"""Audio-driven visemes from pocketsphinx's acoustic model: no decoder, so no settling delay.

Every 10 ms analysis frame gets the model's phone posteriors summed per viseme (at rest
when the frame is quieter than ``SILENT_DB``), smoothed causally (one-pole, ``SMOOTHING``);
each animation frame takes the latest analysis frame whose features are complete
``LOOKAHEAD_MS`` after the frame instant. See ``presence.lipsync.sphinx_am`` for the model
and the front end. The acoustic scale and the smoothing were chosen on eSpeak speech.

Look-ahead: 30 ms, exactly (``lookahead_samples``); the analysis frame used is centred
between about 7 ms before and 3 ms after the frame instant. Cost: one FFT, three small
matrix products and ~16k exponentials per 10 ms: about 1% of a core.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from presence.lipsync.base import ContiguousReply, FrameGrid, VisemeFrame, Weights, rest_weights
from presence.lipsync.sphinx_am import (
    FUTURE_FRAMES,
    N_CEP,
    PAST_FRAMES,
    AcousticModel,
    CepstrumStream,
    Matrix,
    delta_streams,
    packaged_acoustic_model,
)

LOOKAHEAD_MS: Final = 30.0
SILENT_DB: Final = -70.0  # frames quieter than this (dBFS) are at rest, whatever the model says
#: Acoustic scale of the phone log-likelihoods: Gaussian mixtures are overconfident, and
#: summing phones into visemes works better on flatter posteriors.
ACOUSTIC_SCALE: Final = 0.3
#: Weight of the previous analysis frame in the one-pole smoother (10 ms steps).
SMOOTHING: Final = 0.3


class AudioAnimator(ContiguousReply):
    """Animator from reply audio alone (phoneme marks, if any, are ignored)."""

    def __init__(
        self, sample_rate: int, fps: int = 60, model: AcousticModel | None = None, scale: float = ACOUSTIC_SCALE
    ) -> None:
        self.sample_rate = sample_rate
        self.fps = fps
        self.grid = FrameGrid(sample_rate, fps)
        self.model = model or packaged_acoustic_model()
        self.scale = scale
        self.lookahead_samples = round(LOOKAHEAD_MS * sample_rate / 1000)
        self._cepstra = CepstrumStream(sample_rate)
        self._hop = self._cepstra.geometry.hop
        self._window = self._cepstra.geometry.window
        self.reset()

    def _restart(self) -> None:
        """Forget the reply; the cepstral mean is kept (the next reply is the same voice)."""
        self._cepstra.restart()
        self._rows = np.zeros((0, N_CEP))
        self._levels = np.zeros(0)
        self._rows_start = 0  # analysis frame index of self._rows[0]
        self._smoothed: dict[int, Weights] = {}  # analysis frame → smoothed viseme weights
        self._last = rest_weights().astype(np.float64)  # smoother state after _done
        self._done = -1  # last analysis frame smoothed

    def _analyse(self, samples: npt.NDArray[np.float32]) -> None:
        rows, levels = self._cepstra.push(samples)
        self._rows = np.concatenate([self._rows, rows])
        self._levels = np.concatenate([self._levels, levels])

    def _analysis_frame(self, instant: int) -> int:
        """The latest analysis frame whose features are complete ``lookahead`` after ``instant``."""
        assert self._start is not None
        reach = instant - self._start + self.lookahead_samples - self._window
        return reach // self._hop - FUTURE_FRAMES

    def _emit(self, final: bool) -> list[VisemeFrame]:
        assert self._start is not None and self._next_frame is not None
        end = self._start + self._received
        limit = end if final else end - self.lookahead_samples + 1
        instants = np.arange(self._next_frame, max(limit, self._next_frame), self.grid.step)
        if len(instants) == 0:
            return []
        self._next_frame = int(instants[-1]) + self.grid.step
        frames_held = self._rows_start + len(self._rows)
        analysis = np.array([self._analysis_frame(int(t)) for t in instants])
        if final:  # at the end of the reply the last frames use what there is
            analysis = np.minimum(analysis, frames_held - 1 - FUTURE_FRAMES)
        weights = self._weights(analysis)
        self._forget(before=int(analysis[-1]) - PAST_FRAMES - 1)
        return [VisemeFrame(int(t), w) for t, w in zip(instants, weights, strict=True)]

    def _weights(self, analysis: np.ndarray) -> list[Weights]:
        self._smooth_until(int(analysis.max()))
        rest = rest_weights()
        return [self._smoothed.get(int(t), rest) for t in analysis]

    def _smooth_until(self, last: int) -> None:
        """Posteriors of analysis frames ``_done+1 .. last``, smoothed in order."""
        first = self._done + 1
        if last < first:
            return
        local = first - self._rows_start
        streams = delta_streams(self._rows, local, last - first + 1)
        visemes: Matrix = self.model.viseme_posteriors(streams, self.scale)
        levels = self._levels[local : local + len(visemes)]
        rest = rest_weights().astype(np.float64)
        for i, posterior in enumerate(visemes):
            target = posterior if levels[i] >= SILENT_DB and np.all(np.isfinite(posterior)) else rest
            self._last = SMOOTHING * self._last + (1.0 - SMOOTHING) * target
            self._smoothed[first + i] = np.clip(self._last, 0.0, 1.0).astype(np.float32)
        self._done = last

    def _forget(self, before: int) -> None:
        for t in [t for t in self._smoothed if t < before]:
            del self._smoothed[t]
        drop = min(max(before - self._rows_start, 0), max(len(self._rows) - 1, 0))
        if drop:
            self._rows = self._rows[drop:]
            self._levels = self._levels[drop:]
            self._rows_start += drop
