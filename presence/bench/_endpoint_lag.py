"""Endpoint lag: how long after the true end of speech the VAD says the user went quiet.

Every confirmation delay includes it (Silero's confidence outlasts the last phone by a few
windows). Measured per VAD setting: the speech/silence thresholds, and a volume floor
(``VolumeGate``) applied to the same Silero probabilities, so the settings differ in nothing
else. Also reported: silence onsets heard per turn (a setting that ends speech sooner may also
split words) and what fixed 320 ms and 800 ms rules confirm with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from presence.audio.vad import WINDOW_SAMPLES, VolumeGate
from presence.bench._stats import summary
from presence.endofturn.asr_replay import silence_onsets
from presence.media import INPUT_SAMPLE_RATE
from presence.session.turns import TurnConfig


@dataclass(frozen=True, slots=True)
class VadSetting:
    name: str
    speech_threshold: float = 0.5
    silence_threshold: float = 0.35
    gate_margin_db: float | None = None  # None: no volume floor

    def config(self) -> TurnConfig:
        return TurnConfig(speech_threshold=self.speech_threshold, silence_threshold=self.silence_threshold)


SETTINGS: tuple[VadSetting, ...] = (
    VadSetting("presence default (0.5 / 0.35)"),
    VadSetting("no hysteresis (0.5 / 0.5)", 0.5, 0.5),
    VadSetting("Pipecat's confidence (0.7 / 0.7)", 0.7, 0.7),
    VadSetting("0.6 / 0.6", 0.6, 0.6),
    VadSetting("start 0.5, end below 0.7", 0.5, 0.7),
    VadSetting("0.5 / 0.35, floor −40 dB", gate_margin_db=40.0),
    VadSetting("0.5 / 0.35, floor −30 dB", gate_margin_db=30.0),
)


class _Turn(Protocol):
    @property
    def speech_start(self) -> int: ...

    @property
    def speech_end(self) -> int: ...


class _Stream(Protocol):
    @property
    def audio(self) -> np.ndarray: ...

    @property
    def turns(self) -> Sequence[_Turn]: ...


def gated(probs: np.ndarray, audio: np.ndarray, margin_db: float) -> np.ndarray:
    gate = VolumeGate(margin_db=margin_db)
    return np.asarray(
        [gate.gate(float(p), audio[i * WINDOW_SAMPLES : (i + 1) * WINDOW_SAMPLES]) for i, p in enumerate(probs)]
    )


def lags_ms(stream: _Stream, probs: np.ndarray, setting: VadSetting) -> tuple[list[float], int]:
    """Per turn end: the onset of the final silence − the true end; and all onsets in turns."""
    onsets = np.asarray(silence_onsets(probs, setting.config()))
    out: list[float] = []
    inside = 0
    for k, turn in enumerate(stream.turns):
        horizon = stream.turns[k + 1].speech_start if k + 1 < len(stream.turns) else len(stream.audio)
        mine = onsets[(onsets > turn.speech_start) & (onsets < min(horizon, turn.speech_end + INPUT_SAMPLE_RATE))]
        inside += len(mine)
        if len(mine):
            out.append((int(mine[-1]) - turn.speech_end) * 1000 / INPUT_SAMPLE_RATE)
    return out, inside


def measure(streams: Sequence[_Stream], probs: Sequence[np.ndarray], evaluate: Any) -> list[dict[str, Any]]:
    """One row per setting; ``evaluate(probs, config)`` gives the fixed-320 ms outcome."""
    from presence.session.endpointing import FixedSilence

    rows = []
    for setting in SETTINGS:
        per_stream = [
            p if setting.gate_margin_db is None else gated(p, s.audio, setting.gate_margin_db)
            for s, p in zip(streams, probs, strict=True)
        ]
        lags: list[float] = []
        onsets = 0
        for s, p in zip(streams, per_stream, strict=True):
            got, n = lags_ms(s, p, setting)
            lags += got
            onsets += n
        turns = sum(len(s.turns) for s in streams)
        row: dict[str, Any] = {
            "setting": setting.name,
            "end_lag_ms": summary(lags, 1),
            "onsets_per_turn": round(onsets / max(turns, 1), 2),
        }
        for ms in (320, 800):
            config = TurnConfig(
                speech_threshold=setting.speech_threshold,
                silence_threshold=setting.silence_threshold,
                rule=FixedSilence(float(ms)),
            )
            fixed = evaluate(per_stream, config)
            keep = ("confirm_delay_ms", "false_cut_in_rate", "mid_sentence_cut_in_rate", "missed_turn_ends")
            row[f"fixed_{ms}"] = {k: fixed[k] for k in keep}
        rows.append(row)
    return rows
