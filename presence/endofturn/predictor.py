"""The fusion: words, sound and silence so far → P(the user is done), at one VAD window.

A logistic regression over a handful of named features (``FEATURES``), so every weight can be
read and the decision table tested. The words come from the text model as a log-odds (or are
unknown while the ASR has not yet covered the last stretch of speech); the sound is the prosody
cue at the start of the pause (last pitch relative to the speaker's median) and the VAD's
trajectory; the silence is the time since the VAD heard the user stop. Trained by
``python -m presence.endofturn.train``; calibrated on its training distribution (eSpeak NG
voices speaking Switchboard turns), not on the evaluation corpus.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from presence.audio.prosody import PauseCue
from presence.endofturn.text import TextCompleteness

WEIGHTS: Final = Path(__file__).with_name("weights") / "fusion.json"

#: The fusion's inputs, in the order of ``PauseContext.vector``.
FEATURES: Final = (
    "bias",
    "text_logit",  # the text model's log-odds that the words end an utterance (0 when unknown)
    "text_unknown",  # 1 while no transcript covers the speech just before this pause
    "text_x_silence_s",  # complete words make each further moment of silence count more
    "pitch_st",  # last voiced pitch, semitones relative to the speaker's median (0 when unknown)
    "pitch_unknown",
    "silence_s",
    "log_silence",  # ln(silence / 100 ms): the hazard rises fast, then slowly
    "pause_max_prob",  # the highest VAD probability inside the pause so far (a breath, a restart)
    "run_s",  # length of the stretch of speech before the pause (capped at 5 s)
)


@dataclass(frozen=True, slots=True)
class PauseContext:
    """Everything known at one window of a pause."""

    silence_ms: float
    cue: PauseCue
    transcript: str | None  # None: no transcript covers the speech before this pause yet
    pause_max_prob: float = 0.0
    run_ms: float = 0.0


def vector(context: PauseContext, text_logit: float | None) -> list[float]:
    """The feature values in ``FEATURES`` order."""
    silence_s = context.silence_ms / 1000.0
    text = text_logit if text_logit is not None else 0.0
    pitch = context.cue.final_pitch_st
    return [
        1.0,
        text,
        1.0 if text_logit is None else 0.0,
        text * silence_s,
        max(-12.0, min(12.0, pitch)) if pitch is not None else 0.0,
        1.0 if pitch is None else 0.0,
        silence_s,
        math.log(max(context.silence_ms, 10.0) / 100.0),
        context.pause_max_prob,
        min(context.run_ms, 5000.0) / 1000.0,
    ]


@dataclass(frozen=True, slots=True)
class EndOfTurnPredictor:
    """``probability(context)``: the calibrated chance that this pause ends the turn."""

    weights: tuple[float, ...]
    text: TextCompleteness
    threshold: float = 0.5  # the training's choice: ≤ 5 % of held-out mid-utterance pauses released into

    def __post_init__(self) -> None:
        if len(self.weights) != len(FEATURES):
            raise ValueError(
                f"the fusion needs {len(FEATURES)} weights ({', '.join(FEATURES)}), got {len(self.weights)}"
            )

    @classmethod
    def load(cls, path: Path = WEIGHTS, text: TextCompleteness | None = None) -> EndOfTurnPredictor:
        data = json.loads(path.read_text())
        named = data["weights"]
        weights = tuple(float(named[name]) for name in FEATURES)
        return cls(weights, text or TextCompleteness.load(), float(data.get("threshold", 0.5)))

    def vector(self, context: PauseContext) -> list[float]:
        logit = None if context.transcript is None else self.text.logit(context.transcript)
        return vector(context, logit)

    def probability(self, context: PauseContext) -> float:
        z = sum(w * x for w, x in zip(self.weights, self.vector(context), strict=True))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
