"""Voice activity detectors: one window of 16 kHz audio in, a speech probability out.

``EnergyVad`` is the dependency-free fallback; the Silero ONNX detector lives beside it.
Detectors keep per-session state, so each session owns its own instance.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np

from presence.media import Samples

WINDOW_SAMPLES: Final = 512  # 32 ms at 16 kHz, the window Silero VAD is trained on


class VoiceActivityDetector(Protocol):
    window_samples: int

    def probability(self, window: Samples) -> float:
        """Speech probability in [0, 1] for exactly ``window_samples`` samples."""
        ...

    def reset(self) -> None: ...


class EnergyVad:
    """Speech when the window's level is ``margin_db`` above a tracked noise floor.

    The floor follows quiet windows quickly and loud ones slowly, so steady noise is learnt
    and speech is not; the probability is a soft ramp around the margin.
    """

    window_samples = WINDOW_SAMPLES

    def __init__(self, margin_db: float = 12.0, floor_db: float = -70.0, min_speech_db: float = -45.0) -> None:
        self.margin_db = margin_db
        self.initial_floor_db = floor_db
        self.min_speech_db = min_speech_db
        self.floor_db = floor_db

    def probability(self, window: Samples) -> float:
        rms = float(np.sqrt(np.mean(np.square(window, dtype=np.float64)))) if len(window) else 0.0
        level_db = 20.0 * np.log10(max(rms, 1e-7))
        rate = 0.2 if level_db < self.floor_db else 0.002
        self.floor_db += rate * (level_db - self.floor_db)
        above = level_db - max(self.floor_db + self.margin_db, self.min_speech_db)
        return float(1.0 / (1.0 + np.exp(-above / 2.0)))

    def reset(self) -> None:
        self.floor_db = self.initial_floor_db


# --------------------------------------------------------------------------- Silero

SILERO_PACKAGE: Final = "silero_vad"
SILERO_MODEL_FILE: Final = "silero_vad.onnx"  # v6, 8 and 16 kHz, inputs (input, state, sr)
SILERO_CONTEXT_SAMPLES: Final = 64  # the model sees the previous window's last 64 samples too
SILERO_STATE_SHAPE: Final = (2, 1, 128)
SILERO_SAMPLE_RATE: Final = 16_000


class VadUnavailable(RuntimeError):
    """The Silero model or onnxruntime is not installed (install the ``local`` extra, or use the
    energy VAD)."""


def silero_model_path() -> Path:
    """The ONNX file shipped in the ``silero-vad`` wheel, found without importing the package
    (its ``__init__`` imports torch, which presence does not use)."""
    spec = importlib.util.find_spec(SILERO_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / "data" / SILERO_MODEL_FILE
        if candidate.is_file():
            return candidate
    raise VadUnavailable(
        f"the Silero VAD model ({SILERO_PACKAGE}/data/{SILERO_MODEL_FILE}) is not installed; "
        "`pip install --no-deps silero-vad` or run with --vad energy"
    )


_sessions: dict[Path, Any] = {}
_sessions_lock = threading.Lock()


def shared_silero_session(path: Path | None = None) -> Any:
    """One single-threaded ``onnxruntime.InferenceSession`` per model file and process.

    Sharing is safe: the model's recurrent state is an input and an output of ``run`` (each
    ``SileroVad`` keeps its own), and ``InferenceSession.run`` may be called from several
    threads at once. One thread per call keeps a VAD window from competing with the other
    sessions' work for cores; a window costs about a tenth of a millisecond.
    """
    model = (path or silero_model_path()).resolve()
    with _sessions_lock:
        session = _sessions.get(model)
        if session is None:
            try:
                import onnxruntime
            except ImportError as exc:
                raise VadUnavailable(
                    "onnxruntime is not installed; install presence[local] or use --vad energy"
                ) from exc
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.log_severity_level = 3  # the model's unused initialisers are not worth a warning
            session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
            _sessions[model] = session
        return session


class SileroVad:
    """Silero VAD v6 on 32 ms windows, through onnxruntime (no torch).

    Per instance (so per user session): the recurrent state and the last 64 samples of the
    previous window, which the model expects prepended to each new one. The inference session
    itself is shared by every instance in the process.
    """

    window_samples = WINDOW_SAMPLES

    def __init__(self, model_path: Path | None = None) -> None:
        self._session = shared_silero_session(model_path)
        self._sample_rate = np.array(SILERO_SAMPLE_RATE, dtype=np.int64)
        self._input = np.zeros((1, SILERO_CONTEXT_SAMPLES + WINDOW_SAMPLES), dtype=np.float32)
        self._state = np.zeros(SILERO_STATE_SHAPE, dtype=np.float32)

    def probability(self, window: Samples) -> float:
        if len(window) != WINDOW_SAMPLES:
            raise ValueError(f"Silero VAD needs windows of exactly {WINDOW_SAMPLES} samples, got {len(window)}")
        # The input buffer is [context | window]; the new context is the window's tail.
        self._input[0, :SILERO_CONTEXT_SAMPLES] = self._input[0, -SILERO_CONTEXT_SAMPLES:]
        self._input[0, SILERO_CONTEXT_SAMPLES:] = window
        output, state = self._session.run(None, {"input": self._input, "state": self._state, "sr": self._sample_rate})
        self._state = state
        return float(output[0, 0])

    def reset(self) -> None:
        self._input.fill(0.0)
        self._state = np.zeros(SILERO_STATE_SHAPE, dtype=np.float32)


# --------------------------------------------------------------------------- volume floor


class VolumeGate:
    """Speech only while the window is within ``margin_db`` of the speaker's recent loud level.

    Silero stays confident through the fading tail of an utterance (breath, a trailing vowel)
    for two or three windows; a level floor relative to the speech around it lets the end be
    heard sooner. The reference is the loudest recent speech window, decaying by
    ``decay_db_per_s`` so a speaker who drops their voice is followed. Pure: level in, gated
    probability out. Measured by ``presence bench endpointing`` (endpoint lag table).
    """

    def __init__(self, margin_db: float = 30.0, decay_db_per_s: float = 3.0, floor_db: float = -60.0) -> None:
        self.margin_db = margin_db
        self.decay_db_per_window = decay_db_per_s * WINDOW_SAMPLES / SILERO_SAMPLE_RATE
        self.floor_db = floor_db
        self.reference_db = floor_db

    def gate(self, prob: float, window: Samples) -> float:
        rms = float(np.sqrt(np.mean(np.square(window, dtype=np.float64)))) if len(window) else 0.0
        level_db = 20.0 * float(np.log10(max(rms, 1e-7)))
        self.reference_db = max(self.floor_db, self.reference_db - self.decay_db_per_window)
        if prob >= 0.5:
            self.reference_db = max(self.reference_db, level_db)
        return prob if level_db >= self.reference_db - self.margin_db else 0.0

    def reset(self) -> None:
        self.reference_db = self.floor_db


class GatedVad:
    """A detector whose speech probability is zeroed below a ``VolumeGate``'s floor."""

    def __init__(self, inner: VoiceActivityDetector, gate: VolumeGate) -> None:
        self.inner = inner
        self.gate = gate
        self.window_samples = inner.window_samples

    def probability(self, window: Samples) -> float:
        return self.gate.gate(self.inner.probability(window), window)

    def reset(self) -> None:
        self.inner.reset()
        self.gate.reset()
