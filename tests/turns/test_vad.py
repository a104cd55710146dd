"""Silero VAD through onnxruntime: speech in TIMIT scores high, its h# silences low."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from presence.audio.vad import (
    WINDOW_SAMPLES,
    EnergyVad,
    GatedVad,
    SileroVad,
    VolumeGate,
    shared_silero_session,
    silero_model_path,
)
from presence.audio.wavfile import read_speech16k
from presence.testing.corpus import read_segments


def windows_inside(spans: list[tuple[int, int]], n: int) -> list[int]:
    """Indices of VAD windows lying wholly inside one of ``spans``."""
    return [i for i in range(n) if any(a <= i * WINDOW_SAMPLES and (i + 1) * WINDOW_SAMPLES <= b for a, b in spans)]


def probabilities(vad: SileroVad, audio: np.ndarray) -> np.ndarray:
    n = len(audio) // WINDOW_SAMPLES
    return np.array([vad.probability(audio[i * WINDOW_SAMPLES : (i + 1) * WINDOW_SAMPLES]) for i in range(n)])


def test_the_model_is_found_in_the_installed_wheel_without_importing_it() -> None:
    import sys

    path = silero_model_path()
    assert path.suffix == ".onnx" and path.is_file()
    assert "silero_vad" not in sys.modules, "finding the model must not import the torch-backed package"


def test_speech_scores_high_and_h_sharp_silence_low_on_timit(timit_dir: Path) -> None:
    vad = SileroVad()
    speech_probs: list[float] = []
    silence_probs: list[float] = []
    for wav in sorted(timit_dir.glob("*/sa1.wav")) + sorted(timit_dir.glob("*/sx*.wav")):
        audio = read_speech16k(wav)
        phones = read_segments(wav.with_suffix(".phn"))
        vad.reset()
        probs = probabilities(vad, audio)
        first, last = phones[0], phones[-1]
        # Leading h# (after the detector settles) and trailing h# (after its hangover).
        silent = [(first[0] + 2 * WINDOW_SAMPLES, first[1] - WINDOW_SAMPLES), (last[0] + 6 * WINDOW_SAMPLES, last[1])]
        # Voiced stretches of the sentence: vowels only, so closures inside words do not count.
        vowels = [
            (a, b)
            for a, b, p in phones
            if p in {"aa", "ae", "ah", "ao", "aw", "ay", "eh", "ey", "ih", "iy", "ow", "uw"}
        ]
        speech_probs += [probs[i] for i in windows_inside(vowels, len(probs))]
        silence_probs += [probs[i] for i in windows_inside(silent, len(probs))]
    assert len(speech_probs) > 1000 and len(silence_probs) > 200
    assert np.median(speech_probs) > 0.9
    assert np.mean(np.asarray(speech_probs) > 0.5) > 0.95
    assert np.median(silence_probs) < 0.1
    assert np.mean(np.asarray(silence_probs) < 0.5) > 0.95


def test_reset_forgets_the_recurrent_state(timit_dir: Path) -> None:
    audio = read_speech16k(timit_dir / "dr1-fvmh0" / "sa1.wav")
    vad = SileroVad()
    fresh = probabilities(vad, audio[: 20 * WINDOW_SAMPLES])
    probabilities(vad, audio[20 * WINDOW_SAMPLES :])
    vad.reset()
    again = probabilities(vad, audio[: 20 * WINDOW_SAMPLES])
    np.testing.assert_allclose(fresh, again, rtol=1e-5, atol=1e-6)


def test_sessions_share_the_model_but_not_their_state(timit_dir: Path) -> None:
    audio = read_speech16k(timit_dir / "dr1-fvmh0" / "sa1.wav")
    a, b = SileroVad(), SileroVad()
    assert shared_silero_session() is shared_silero_session()
    alone = probabilities(SileroVad(), audio[: 40 * WINDOW_SAMPLES])
    interleaved_a, interleaved_b = [], []
    quiet = np.zeros(WINDOW_SAMPLES, dtype=np.float32)
    for i in range(40):
        interleaved_a.append(a.probability(audio[i * WINDOW_SAMPLES : (i + 1) * WINDOW_SAMPLES]))
        interleaved_b.append(b.probability(quiet))
    np.testing.assert_allclose(alone, interleaved_a, rtol=1e-5, atol=1e-6)
    assert max(interleaved_b) < 0.2


def test_a_window_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="512"):
        SileroVad().probability(np.zeros(320, dtype=np.float32))


def test_the_energy_vad_remains_a_detector_of_the_same_shape() -> None:
    vad = EnergyVad()
    assert vad.window_samples == SileroVad.window_samples == WINDOW_SAMPLES
    assert vad.probability(np.zeros(WINDOW_SAMPLES, dtype=np.float32)) < 0.5


def tone(level_db: float, n: int = WINDOW_SAMPLES) -> np.ndarray:
    t = np.arange(n) / 16000
    return np.asarray(10 ** (level_db / 20) * np.sqrt(2) * np.sin(2 * np.pi * 220 * t), dtype=np.float32)


def test_the_volume_floor_drops_a_tail_far_below_the_speech_before_it() -> None:
    gate = VolumeGate(margin_db=30.0)
    assert gate.gate(0.9, tone(-20)) == 0.9  # loud speech sets the reference
    assert gate.gate(0.8, tone(-40)) == 0.8  # 20 dB down: still speech
    assert gate.gate(0.8, tone(-55)) == 0.0  # 35 dB down: a fading tail, not speech
    gate.reset()
    assert gate.gate(0.8, tone(-55)) == 0.8  # without a reference nothing is gated


def test_the_volume_floor_follows_a_speaker_who_drops_their_voice() -> None:
    gate = VolumeGate(margin_db=30.0, decay_db_per_s=3.0)
    gate.gate(0.9, tone(-10))
    assert gate.gate(0.9, tone(-45)) == 0.0
    for _ in range(int(10 / 0.032)):  # ten quiet seconds: the reference decays 30 dB
        gate.gate(0.1, tone(-70))
    assert gate.gate(0.9, tone(-45)) == 0.9


def test_a_gated_vad_wraps_any_detector() -> None:
    vad = GatedVad(EnergyVad(), VolumeGate(margin_db=30.0))
    loud = [vad.probability(tone(-20)) for _ in range(5)]
    assert min(loud) > 0.5
    assert vad.probability(tone(-60)) == 0.0
    vad.reset()
    assert vad.gate.reference_db == vad.gate.floor_db
