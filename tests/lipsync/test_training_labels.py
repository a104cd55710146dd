"""The trainer's labels follow the reference convention, and its augmentation keeps shapes."""

from __future__ import annotations

import numpy as np

from presence.lipsync.base import VISEMES
from presence.lipsync.features import N_FEATURES
from presence.lipsync.train import OFFSETS, augment, frame_labels

RATE = 16000  # 10 ms rows: centres every 160 samples


def test_labels_follow_espeak_events_and_a_stop_owns_its_closure() -> None:
    # "_" at 0, 'a' at 100 ms, 'p' burst at 300 ms, 'a' at 360 ms, pause at 500 ms
    offsets = [0, 1600, 4800, 5760, 8000]
    labels = frame_labels(offsets, ["_", "'a", "p", "a", "_:"], 8800, RATE)
    names = [VISEMES[i] for i in labels]
    assert names[5] == "sil" and names[15] == "aa"
    assert names[25] == "aa" and names[26] == "PP"  # closure starts 45 ms before the burst mark
    assert names[35] == "PP" and names[37] == "aa" and names[52] == "sil"
    assert len(names) == 55


def test_a_stop_after_silence_takes_the_full_closure_and_non_phones_are_skipped() -> None:
    labels = frame_labels([0, 1600, 1700, 3200], ["_", ";", "t", "'i:"], 4800, RATE)
    names = [VISEMES[i] for i in labels]
    assert names[6] == "sil" and names[7] == "DD" and names[21] == "ih"  # t at 106 ms, closure from 61


def test_augmentation_keeps_the_input_shape_and_leaves_the_source_untouched() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, len(OFFSETS) * N_FEATURES)).astype(np.float32)
    before = x.copy()
    out = augment(x, rng, len(OFFSETS))
    assert out.shape == x.shape and np.isfinite(out).all()
    assert np.array_equal(x, before)
