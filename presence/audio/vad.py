"""Voice activity detectors: one window of 16 kHz audio in, a speech probability out.

``EnergyVad`` is the dependency-free fallback; the Silero ONNX detector lives beside it.
Detectors keep per-session state, so each session owns its own instance.
"""

from __future__ import annotations

from typing import Final, Protocol

import numpy as np

from presence.engines.base import Samples

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
