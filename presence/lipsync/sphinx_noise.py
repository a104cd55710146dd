"""Sphinx's noise removal on mel filter energies (its ``-remove_noise yes``), frame by frame.

The en-us acoustic model was trained on features that went through this step, so the
audio animator applies it too. It tracks a smoothed power per filter, a slowly rising /
quickly falling lower envelope of it as the noise, subtracts the noise, keeps a signal
floor and a decaying peak (temporal masking), and scales each filter by a gain smoothed
over ±4 neighbouring filters. Constants are sphinx's.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float64]

_POWER_SMOOTHING: Final = 0.7
_RISE: Final = 0.995  # the envelope follows a rising input slowly
_FALL: Final = 0.5  # and a falling one quickly
_MASK_DECAY: Final = 0.85
_MASK_FLOOR: Final = 0.2
_MAX_GAIN: Final = 20.0
_SMOOTH_FILTERS: Final = 4
_SIGNAL_MIN: Final = 1.0  # on sphinx's int16 power scale


def _lower_envelope(envelope: Vector, value: Vector) -> Vector:
    rising = value >= envelope
    out: Vector = np.where(rising, _RISE * envelope + (1 - _RISE) * value, _FALL * envelope + (1 - _FALL) * value)
    return out


class NoiseRemover:
    """One stream's noise statistics; ``reset()`` at the start of an utterance (reply)."""

    def __init__(self, n_filters: int) -> None:
        self.n_filters = n_filters
        lo = np.maximum(np.arange(n_filters) - _SMOOTH_FILTERS, 0)
        hi = np.minimum(np.arange(n_filters) + _SMOOTH_FILTERS, n_filters - 1)
        band = np.arange(n_filters)[None, :]
        self._smoother = ((band >= lo[:, None]) & (band <= hi[:, None])) / (hi - lo + 1)[:, None]
        self.reset()

    def reset(self) -> None:
        self._power: Vector | None = None
        self._noise = np.zeros(self.n_filters)
        self._floor = np.zeros(self.n_filters)
        self._peak = np.zeros(self.n_filters)

    def apply(self, energies: Vector) -> Vector:
        """(frames, filters) linear mel energies → the same, noise removed; frames in order."""
        out = np.empty_like(energies)
        for i, frame in enumerate(energies):
            if self._power is None:
                self._power = frame.copy()
                self._noise = frame / _MAX_GAIN
                self._floor = frame / _MAX_GAIN
                self._peak = np.zeros(self.n_filters)
            power = _POWER_SMOOTHING * self._power + (1 - _POWER_SMOOTHING) * frame
            self._power = power
            self._noise = _lower_envelope(self._noise, power)
            signal = np.maximum(power - self._noise, _SIGNAL_MIN)
            self._floor = _lower_envelope(self._floor, signal)
            current = signal.copy()
            self._peak = self._peak * _MASK_DECAY
            masked = signal < _MASK_DECAY * self._peak
            signal = np.where(masked, self._peak * _MASK_FLOOR, signal)
            self._peak = np.maximum(self._peak, current)
            signal = np.maximum(signal, self._floor)
            with np.errstate(divide="ignore", invalid="ignore"):
                gain = np.where(signal < _MAX_GAIN * power, signal / np.maximum(power, 1e-300), _MAX_GAIN)
            gain = np.clip(gain, 1.0 / _MAX_GAIN, _MAX_GAIN)
            out[i] = frame * (self._smoother @ gain)
        return out
