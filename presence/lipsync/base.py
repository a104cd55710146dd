"""What every lip-sync animator takes and gives: reply audio chunks in, viseme frames out.

Frames are Oculus-15 viseme weights (the core set; ARKit weights are derived from them),
stamped with the output-timeline sample they describe. An animator may hold back at most
``lookahead_samples`` of audio before it emits the frames that cover it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt

from presence.media import AudioChunk
from presence.protocol.hello import OCULUS15, WEIGHT_SETS

VISEMES: Final = WEIGHT_SETS[OCULUS15][1]
VISEME_INDEX: Final = {name: i for i, name in enumerate(VISEMES)}
Weights = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class VisemeFrame:
    """The mouth at output-timeline sample ``t_samples``: 15 weights in [0, 1]."""

    t_samples: int
    weights: Weights


def rest_weights() -> Weights:
    weights = np.zeros(len(VISEMES), dtype=np.float32)
    weights[VISEME_INDEX["sil"]] = 1.0
    return weights


class Animator(Protocol):
    """Streaming animator for one reply at a time."""

    sample_rate: int
    fps: int
    lookahead_samples: int

    def push(self, chunk: AudioChunk, start_sample: int) -> list[VisemeFrame]:
        """Chunk whose first sample sits at output-timeline ``start_sample``; frames now due."""
        ...

    def flush(self) -> list[VisemeFrame]:
        """End of reply: emit what is held back, ending on a closed mouth."""
        ...

    def reset(self) -> None:
        """Forget the current reply (interruption)."""
        ...

    def add_text(self, text: str, final: bool) -> None:
        """The reply's text so far (cumulative, as engines send it); most animators ignore it."""
        ...

    def poll(self, now_sample: int) -> list[VisemeFrame]:
        """Playback has reached ``now_sample``: frames held for look-ahead that are now due."""
        ...

    def report(self) -> dict[str, Any]:
        """The reply's animation metrics (e.g. effective look-ahead); ``{}`` when none."""
        ...


class StreamingDefaults:
    """What animators that neither read text nor hold frames past their chunk answer."""

    def add_text(self, text: str, final: bool) -> None:
        return None

    def poll(self, now_sample: int) -> list[VisemeFrame]:
        return []

    def report(self) -> dict[str, Any]:
        return {}


class ContiguousReply(StreamingDefaults):
    """``push``/``flush`` for animators that analyse a reply's audio as one stream: a chunk
    that does not continue the reply starts a new one; ``flush`` emits what is left and then
    the rest pose. Subclasses analyse audio (``_analyse``, ``_finish``) and emit the frames
    due (``_emit``); ``reset`` clears their state and calls ``_restart``."""

    grid: FrameGrid

    def reset(self) -> None:
        self._start: int | None = None  # timeline sample of the reply's first audio sample
        self._received = 0
        self._next_frame: int | None = None
        self._restart()

    def push(self, chunk: AudioChunk, start_sample: int) -> list[VisemeFrame]:
        if self._start is None or start_sample != self._start + self._received:
            self.reset()
            self._start = start_sample
            self._next_frame = self.grid.first_at_or_after(start_sample)
        self._analyse(chunk.samples)
        self._received += len(chunk.samples)
        return self._emit(final=False)

    def flush(self) -> list[VisemeFrame]:
        if self._start is None or self._next_frame is None:
            self.reset()
            return []
        self._finish()
        frames = self._emit(final=True)
        frames.append(VisemeFrame(self._next_frame, rest_weights()))
        self.reset()
        return frames

    def _restart(self) -> None:
        """Clear the analysis state for a new reply."""

    def _analyse(self, samples: npt.NDArray[np.float32]) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        """The reply's audio is complete: analyse what was held back."""

    def _emit(self, final: bool) -> list[VisemeFrame]:
        raise NotImplementedError


class FrameGrid:
    """Frame instants on the output timeline: every ``step`` samples from sample 0."""

    def __init__(self, sample_rate: int, fps: int) -> None:
        self.step = max(1, round(sample_rate / fps))

    def first_at_or_after(self, t_samples: int) -> int:
        return -(-t_samples // self.step) * self.step


class EnergyAnimator(StreamingDefaults):
    """Baseline: mouth opening follows loudness (the 'aa' viseme), closed in silence.

    Needs no look-ahead beyond the frame's own half window. It cannot close the lips for
    p/b/m or round them for 'oo'; the trained audio estimator exists to do better.
    """

    def __init__(self, sample_rate: int, fps: int = 60, full_open_db: float = -12.0, closed_db: float = -50.0) -> None:
        self.sample_rate = sample_rate
        self.fps = fps
        self.grid = FrameGrid(sample_rate, fps)
        self.half_window = self.grid.step // 2
        self.lookahead_samples = self.half_window
        self.full_open_db = full_open_db
        self.closed_db = closed_db
        self._audio = np.zeros(0, dtype=np.float32)
        self._audio_start = 0  # timeline sample of self._audio[0]
        self._next_frame: int | None = None

    def push(self, chunk: AudioChunk, start_sample: int) -> list[VisemeFrame]:
        if self._next_frame is None or start_sample != self._audio_start + len(self._audio):
            self._audio = np.zeros(0, dtype=np.float32)
            self._audio_start = start_sample
            self._next_frame = self.grid.first_at_or_after(start_sample)
        self._audio = np.concatenate([self._audio, chunk.samples.astype(np.float32, copy=False)])
        return self._emit(final=False)

    def flush(self) -> list[VisemeFrame]:
        frames = self._emit(final=True)
        if self._next_frame is not None:
            frames.append(VisemeFrame(self._next_frame, rest_weights()))
        self.reset()
        return frames

    def reset(self) -> None:
        self._audio = np.zeros(0, dtype=np.float32)
        self._next_frame = None

    def _emit(self, final: bool) -> list[VisemeFrame]:
        frames: list[VisemeFrame] = []
        assert self._next_frame is not None or final
        end = self._audio_start + len(self._audio)
        while self._next_frame is not None and (
            self._next_frame + self.half_window <= end or (final and self._next_frame < end)
        ):
            lo = max(self._next_frame - self.half_window - self._audio_start, 0)
            hi = max(self._next_frame + self.half_window - self._audio_start, lo)
            frames.append(VisemeFrame(self._next_frame, self.weights_for(self._audio[lo:hi])))
            self._next_frame += self.grid.step
        # Keep only what the next frame's window still needs.
        if self._next_frame is not None:
            keep_from = max(self._next_frame - self.half_window - self._audio_start, 0)
            self._audio = self._audio[keep_from:]
            self._audio_start += keep_from
        return frames

    def weights_for(self, window: npt.NDArray[np.float32]) -> Weights:
        weights = np.zeros(len(VISEMES), dtype=np.float32)
        finite = window[np.isfinite(window)] if len(window) else window
        rms = float(np.sqrt(np.mean(np.square(finite, dtype=np.float64)))) if len(finite) else 0.0
        level_db = 20.0 * np.log10(max(rms, 1e-9))
        openness = float(np.clip((level_db - self.closed_db) / (self.full_open_db - self.closed_db), 0.0, 1.0))
        weights[VISEME_INDEX["aa"]] = openness
        weights[VISEME_INDEX["sil"]] = 1.0 - openness
        return weights
