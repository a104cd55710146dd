"""Scoring per VISEMES.md: frame labels from phone alignments, agreement, closure, openness, shift."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from presence.lipsync.base import VISEME_INDEX, VISEMES
from presence.lipsync.scoring import PhoneSegment, Utterance, read_phn, reference_labels, score

RATE = 16000


def one_hot(names: list[str]) -> np.ndarray:
    out = np.zeros((len(names), len(VISEMES)), dtype=np.float32)
    out[np.arange(len(names)), [VISEME_INDEX[n] for n in names]] = 1.0
    return out


def labels(names: list[str]) -> np.ndarray:
    return np.array([VISEME_INDEX[n] for n in names])


def test_a_frame_takes_the_phone_covering_its_centre() -> None:
    # 10 ms frames: centres at 80, 240, 400 ... samples.
    segments = [PhoneSegment(0, 250, "h#"), PhoneSegment(250, 400, "bcl"), PhoneSegment(400, 800, "aa")]
    assert [VISEMES[i] for i in reference_labels(segments, 5, RATE)] == ["sil", "sil", "aa", "aa", "aa"]
    segments = [PhoneSegment(0, 240, "pau"), PhoneSegment(240, 560, "bcl")]
    assert [VISEMES[i] for i in reference_labels(segments, 4, RATE)] == ["sil", "PP", "PP", "sil"]


def test_a_perfect_estimate_scores_one_everywhere_at_zero_shift() -> None:
    names = ["sil", "PP", "PP", "aa", "aa", "aa", "SS", "ih", "ih", "sil"] * 3
    s = score([Utterance(labels(names), one_hot(names))])
    assert (s.agreement15, s.agreement_coarse, s.closed_recall, s.closed_precision) == (1.0, 1.0, 1.0, 1.0)
    assert s.openness_r > 0.999 and s.best_shift_ms == 0


def test_an_estimate_two_frames_late_peaks_at_plus_twenty_ms() -> None:
    names = ["sil", "PP", "PP", "aa", "aa", "aa", "SS", "ih", "ih", "oh", "oh", "nn"] * 4
    late = ["sil", "sil", *names[:-2]]
    s = score([Utterance(labels(names), one_hot(late))])
    assert s.best_shift_ms == 20 and s.agreement15_at_best_shift == 1.0 and s.agreement15 < 1.0


def test_coarse_agreement_forgives_confusions_inside_a_class() -> None:
    ref, est = ["DD", "SS", "ih", "PP"], ["nn", "kk", "E", "FF"]
    s = score([Utterance(labels(ref), one_hot(est))])
    assert s.agreement15 == 0.0 and s.agreement_coarse == 0.75
    assert s.closed_recall == 0.0 and s.closed_precision == 0.0


def test_the_timit_sample_reads_and_maps_without_unknown_phones(timit_dir: Path) -> None:
    phn_files = sorted(timit_dir.glob("*/*.phn"))
    assert phn_files
    for phn in phn_files:
        segments = read_phn(phn)
        reference_labels(segments, segments[-1].end_sample // 160, RATE)


@pytest.mark.bench
def test_the_benchmark_runs_at_ci_size_and_reports_every_estimator(tmp_path: Path, timit_dir: Path) -> None:
    out = tmp_path / "lipsync.json"
    done = subprocess.run(
        [sys.executable, "-m", "presence", "bench", "lipsync", "--quick", "--json", str(out), "--data", str(timit_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    names = {row["estimator"] for row in results["rows"]}
    assert {"energy (baseline)", "pylipsync (uLipSync port)", "MlpAnimator (log-mel MLP trained on eSpeak)"} <= names
    assert "AudioAnimator (pocketsphinx acoustic model, no decoder)" in names
    assert {row["estimator"] for row in results["espeak_rows"]} >= {"PhonemeAnimator (eSpeak's events)"}
    assert any(name.startswith("pocketsphinx allphone, causal") for name in names)
    assert results["meta"]["utterances"] == 8
    for row in results["rows"]:
        assert 0.0 <= row["agreement15"] <= 1.0 and -100 <= row["best_shift_ms"] <= 100
