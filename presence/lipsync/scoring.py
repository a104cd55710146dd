"""Scoring lip-sync against phone alignments, exactly as design/VISEMES.md defines it.

Frames are 10 ms; a frame's reference viseme is the phone covering its centre. An
estimate is one 15-weight vector per frame (its weights at the frame centre); its label is
the strongest viseme and its openness ``Σ weight × reference openness``, so a quiet,
half-weighted estimate is a half-open mouth.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from presence.lipsync.base import VISEME_INDEX, VISEMES
from presence.lipsync.phones import COARSE_CLASSES, COARSE_OF_VISEME, OPENNESS, timit_to_viseme

FRAME_MS: Final = 10
MAX_SHIFT_MS: Final = 100

COARSE_INDEX: Final = np.array([COARSE_CLASSES.index(COARSE_OF_VISEME[v]) for v in VISEMES])
_OPENNESS: Final = np.array([OPENNESS[v] for v in VISEMES])
_CLOSED: Final = VISEME_INDEX["PP"]

Labels = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class PhoneSegment:
    start_sample: int
    end_sample: int
    phone: str


def read_phn(path: Path) -> list[PhoneSegment]:
    """A TIMIT-style ``.phn`` file: ``start end phone`` per line, in samples."""
    segments = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            segments.append(PhoneSegment(int(parts[0]), int(parts[1]), parts[2]))
    return segments


def frame_count(n_samples: int, sample_rate: int) -> int:
    return n_samples * 1000 // (sample_rate * FRAME_MS)


def frame_centres(n_frames: int, sample_rate: int) -> npt.NDArray[np.int64]:
    """Sample index of each 10 ms frame's centre."""
    return ((np.arange(n_frames) * FRAME_MS + FRAME_MS / 2) * sample_rate / 1000).astype(np.int64)


def reference_labels(segments: list[PhoneSegment], n_frames: int, sample_rate: int) -> Labels:
    """Viseme index per frame from the phone covering its centre (silence where none does)."""
    labels = np.full(n_frames, VISEME_INDEX["sil"], dtype=np.int64)
    centres = frame_centres(n_frames, sample_rate)
    for seg in segments:
        covered = (centres >= seg.start_sample) & (centres < seg.end_sample)
        labels[covered] = VISEME_INDEX[timit_to_viseme(seg.phone)]
    return labels


def estimate_labels(weights: npt.NDArray[np.floating]) -> Labels:
    labels: Labels = np.argmax(weights, axis=1).astype(np.int64)
    return labels


def estimate_openness(weights: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    openness: npt.NDArray[np.float64] = np.asarray(weights, dtype=np.float64) @ _OPENNESS
    return openness


@dataclass(frozen=True, slots=True)
class Utterance:
    """One scored utterance: reference labels and an estimate's weights, frame for frame."""

    reference: Labels
    weights: npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Scores:
    frames: int
    agreement15: float
    agreement_coarse: float
    closed_recall: float
    closed_precision: float
    openness_r: float
    best_shift_ms: int
    agreement15_at_best_shift: float


def _shifted_pairs(utterances: list[Utterance], shift_frames: int) -> tuple[Labels, Labels]:
    """Reference frame k paired with estimate frame k + shift (positive: estimate is late)."""
    refs, ests = [], []
    for u in utterances:
        est = estimate_labels(u.weights)
        n = min(len(u.reference), len(est))
        lo, hi = max(0, -shift_frames), min(n, n - shift_frames)
        if hi > lo:
            refs.append(u.reference[lo:hi])
            ests.append(est[lo + shift_frames : hi + shift_frames])
    if not refs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(refs), np.concatenate(ests)


def score(utterances: list[Utterance]) -> Scores:
    ref, est = _shifted_pairs(utterances, 0)
    ref_open = np.concatenate([_OPENNESS[u.reference[: len(u.weights)]] for u in utterances])
    est_open = np.concatenate([estimate_openness(u.weights[: len(u.reference)]) for u in utterances])
    ref_closed, est_closed = ref == _CLOSED, est == _CLOSED
    shifts = range(-MAX_SHIFT_MS // FRAME_MS, MAX_SHIFT_MS // FRAME_MS + 1)
    by_shift = {}
    for shift in shifts:
        ref_s, est_s = _shifted_pairs(utterances, shift)
        if len(ref_s):
            by_shift[shift] = float(np.mean(ref_s == est_s))
    best = max(by_shift, key=lambda s: (by_shift[s], -abs(s)))
    both = ref_closed & est_closed
    return Scores(
        frames=len(ref),
        agreement15=float(np.mean(ref == est)),
        agreement_coarse=float(np.mean(COARSE_INDEX[ref] == COARSE_INDEX[est])),
        closed_recall=float(both.sum() / max(ref_closed.sum(), 1)),
        closed_precision=float(both.sum() / max(est_closed.sum(), 1)),
        openness_r=_pearson(ref_open, est_open),
        best_shift_ms=best * FRAME_MS,
        agreement15_at_best_shift=by_shift[best],
    )


def majority_share(utterances: list[Utterance]) -> float:
    ref = np.concatenate([u.reference for u in utterances])
    return float(np.bincount(ref).max() / len(ref))


def _pearson(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])
