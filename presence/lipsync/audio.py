"""Audio-driven visemes from a small MLP over log-mel context, trained on eSpeak NG speech.

The fallback for ``presence.lipsync.acoustic.AudioAnimator`` when pocketsphinx (whose
acoustic model that animator evaluates) is not installed: it needs numpy and its own
``.npz`` only, but it scores lower on recorded speech (docs/benchmarks/lipsync.md).

Each 10 ms analysis row is classified from its own features and a short context (mostly
past rows, ``future`` rows ahead); the 15 class probabilities are the viseme weights. The
model is trained on eSpeak NG speech whose phoneme timings are known
(``python -m presence.lipsync.train``) and shipped as a small ``.npz``; inference is numpy.

Look-ahead: a frame at audio sample ``a`` uses the row nearest ``a`` (up to half a hop
later), that row's future context, and half an analysis window: 5 + 10 + 12.5 = 27.5 ms.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from presence.lipsync.base import VISEME_INDEX, ContiguousReply, FrameGrid, VisemeFrame, rest_weights
from presence.lipsync.features import N_FEATURES, SILENT_DB, FeatureStream, Matrix

MODEL_FILE: Final = "audio_mlp.npz"
#: The model ``AlignedAnimator`` adds to pocketsphinx's phone scores (future context too).
DECODER_MODEL_FILE: Final = "decoder_mlp.npz"
_SIL = VISEME_INDEX["sil"]


class ModelMissingError(FileNotFoundError):
    """The trained weights are not where the package expects them; run the trainer."""


@dataclass(frozen=True, slots=True)
class AudioModel:
    """Context offsets (rows), input standardisation and an MLP's layers (ReLU between)."""

    offsets: tuple[int, ...]
    mean: Matrix
    std: Matrix
    layers: tuple[tuple[Matrix, Matrix], ...]

    @property
    def future_rows(self) -> int:
        return max(0, max(self.offsets))

    @property
    def past_rows(self) -> int:
        return max(0, -min(self.offsets))

    def probabilities(self, stacked: Matrix) -> Matrix:
        """(n, features × context) → (n, 15) softmax over visemes."""
        h = (stacked - self.mean) / self.std
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        h = h - h.max(axis=1, keepdims=True)
        e = np.exp(h)
        probs: Matrix = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
        return probs

    def save(self, path: Path) -> None:
        arrays: dict[str, npt.NDArray[np.generic]] = {
            "offsets": np.asarray(self.offsets, dtype=np.int64),
            "mean": self.mean,
            "std": self.std,
        }
        for i, (w, b) in enumerate(self.layers):
            arrays[f"w{i}"] = w.astype(np.float16)
            arrays[f"b{i}"] = b.astype(np.float32)
        np.savez_compressed(path, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path) -> AudioModel:
        with np.load(path) as data:
            n = sum(1 for key in data.files if key.startswith("w"))
            layers = tuple((data[f"w{i}"].astype(np.float32), data[f"b{i}"].astype(np.float32)) for i in range(n))
            return cls(
                tuple(int(o) for o in data["offsets"]),
                data["mean"].astype(np.float32),
                data["std"].astype(np.float32),
                layers,
            )


def model_path(name: str = MODEL_FILE) -> Path:
    return Path(str(resources.files("presence.lipsync") / "models" / name))


def load_model(path: Path | None = None) -> AudioModel:
    """The packaged model (loaded once per process and shared read-only), or the one at ``path``."""
    if path is None:
        return _packaged_model()
    return _load(path)


@functools.cache
def _packaged_model() -> AudioModel:
    return _load(model_path())


@functools.cache
def decoder_model() -> AudioModel:
    """The packaged model that ``AlignedAnimator`` fuses into its phone scores (loaded once)."""
    return _load(model_path(DECODER_MODEL_FILE))


def _load(path: Path) -> AudioModel:
    if not path.exists():
        raise ModelMissingError(f"no audio lip-sync model at {path}: run `python -m presence.lipsync.train`")
    return AudioModel.load(path)


def stack_context(rows: Matrix, offsets: tuple[int, ...], first: int, count: int) -> Matrix:
    """Rows ``first .. first+count-1`` each with its context; indices clamp to the rows held."""
    index = np.clip(np.arange(first, first + count)[:, None] + np.asarray(offsets)[None, :], 0, len(rows) - 1)
    stacked: Matrix = rows[index].reshape(count, -1)
    return stacked


def weights_from_rows(model: AudioModel, rows: Matrix, first: int, count: int) -> Matrix:
    """Viseme weights for rows ``first..``: the model's probabilities, rest where the audio is silent."""
    probs = model.probabilities(stack_context(rows, model.offsets, first, count))
    silent = rows[first : first + count, -1] < SILENT_DB
    probs[silent] = rest_weights()
    return probs


class MlpAnimator(ContiguousReply):
    """Animator from reply audio alone with the eSpeak-trained MLP (phoneme marks are ignored)."""

    def __init__(self, sample_rate: int, fps: int = 60, model: AudioModel | None = None) -> None:
        self.sample_rate = sample_rate
        self.fps = fps
        self.grid = FrameGrid(sample_rate, fps)
        self.model = model or load_model()
        self._features = FeatureStream(sample_rate)
        self._hop = self._features.geometry.hop
        half_window = self._features.geometry.window // 2
        self.lookahead_samples = self._hop // 2 + self.model.future_rows * self._hop + half_window
        self.reset()

    def _restart(self) -> None:
        self._features = FeatureStream(self.sample_rate)
        self._rows = np.zeros((0, N_FEATURES), dtype=np.float32)
        self._rows_start = 0  # row index of self._rows[0]
        self._weights: dict[int, Matrix] = {}

    def _analyse(self, samples: npt.NDArray[np.float32]) -> None:
        self._add_rows(self._features.push(samples))

    def _finish(self) -> None:
        self._add_rows(self._features.finish())

    def _add_rows(self, rows: Matrix) -> None:
        self._rows = rows if len(self._rows) == 0 else np.concatenate([self._rows, rows])

    def _emit(self, final: bool) -> list[VisemeFrame]:
        assert self._start is not None and self._next_frame is not None
        rows_total = self._rows_start + len(self._rows)
        # Rows whose future context is complete (all rows at the end of the reply).
        ready = rows_total if final else rows_total - self.model.future_rows
        frames: list[VisemeFrame] = []
        end = self._start + self._received
        while self._next_frame < end:
            row = (self._next_frame - self._start + self._hop // 2) // self._hop
            if row >= ready:
                break
            frames.append(VisemeFrame(self._next_frame, self._row_weights(row)))
            self._next_frame += self.grid.step
        self._forget(before_row=(self._next_frame - self._start) // self._hop - self.model.past_rows - 1)
        return frames

    def _row_weights(self, row: int) -> Matrix:
        weights: Matrix = weights_from_rows(self.model, self._rows, row - self._rows_start, 1)[0]
        return weights

    def _forget(self, before_row: int) -> None:
        drop = min(max(before_row - self._rows_start, 0), max(len(self._rows) - 1, 0))
        if drop:
            self._rows = self._rows[drop:]
            self._rows_start += drop
