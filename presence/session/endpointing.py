"""Confirmation rules: how much silence ends the user's turn.

The turn machine asks its rule once per pause, when the pause begins, how long the silence
must last before the turn is confirmed (the reply released). A fixed rule answers the same
every time; the adaptive rule answers less after a sentence-final cue (pitch at the bottom of
the speaker's range, falling, voice fading) and more after a pause that sounds mid-sentence.
The predictor rule also answers at every silent window: it releases the turn as soon as the
learnt end-of-turn probability (words so far, prosody, silence; ``presence.endofturn``) reaches
its threshold, and falls back to a fixed silence. The trade-off (latency against replies
released into a pause) is measured by ``presence bench endpointing``; see docs/turn-taking.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from presence.audio.prosody import PauseCue
from presence.endofturn.predictor import EndOfTurnPredictor, PauseContext
from presence.session import defaults


class ConfirmationRule(Protocol):
    """Decides, at the start of each pause, the silence that will confirm the turn."""

    @property
    def name(self) -> str: ...

    @property
    def uses_prosody(self) -> bool:
        """True if the rule reads the cue, so the turn machine must track prosody for it."""
        ...

    def confirm_after_ms(self, cue: PauseCue) -> float:
        """The silence that confirms this pause at the latest."""
        ...

    def confirm_early(self, context: PauseContext) -> bool:
        """Asked at every silent window of a pause: confirm now, before ``confirm_after_ms``?"""
        ...


@dataclass(frozen=True, slots=True)
class FixedSilence:
    """The turn is over after ``confirm_ms`` of silence, whatever came before it."""

    confirm_ms: float = float(defaults.CONFIRM_MS)
    name: str = "fixed"
    uses_prosody: bool = False

    def confirm_after_ms(self, cue: PauseCue) -> float:
        return self.confirm_ms

    def confirm_early(self, context: PauseContext) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class AdaptiveSilence:
    """``final_ms`` after a pause that sounds sentence-final, ``continuation_ms`` after one that
    sounds mid-sentence, linear in the cue's finality in between."""

    final_ms: float = 200.0
    continuation_ms: float = 600.0
    name: str = "adaptive"
    uses_prosody: bool = True

    def __post_init__(self) -> None:
        if self.final_ms > self.continuation_ms:
            raise ValueError("final_ms must not exceed continuation_ms")

    def confirm_after_ms(self, cue: PauseCue) -> float:
        return self.continuation_ms - cue.finality * (self.continuation_ms - self.final_ms)

    def confirm_early(self, context: PauseContext) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class PredictorRule:
    """Confirm at the first window where P(user is done) ≥ ``threshold``; at the latest after
    ``max_silence_ms`` (the fallback for a pause the model never trusts).

    The words come from ``TurnTaker.on_transcript``: until a transcript covers the speech just
    before the pause, the predictor sees them as unknown (and, trained so, waits longer).
    """

    threshold: float = 0.5
    max_silence_ms: float = 1200.0
    predictor: EndOfTurnPredictor = field(default_factory=EndOfTurnPredictor.load, compare=False, repr=False)
    name: str = "predictor"
    uses_prosody: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")

    def confirm_after_ms(self, cue: PauseCue) -> float:
        return self.max_silence_ms

    def confirm_early(self, context: PauseContext) -> bool:
        return self.predictor.probability(context) >= self.threshold


def make_rule(
    name: str, confirm_ms: float, final_ms: float | None = None, threshold: float | None = None
) -> ConfirmationRule:
    """A rule from settings: ``fixed`` uses ``confirm_ms``; ``adaptive`` uses ``final_ms`` after
    a final cue and ``confirm_ms`` after a mid-sentence one; ``predictor`` confirms when the
    end-of-turn probability reaches ``threshold`` (default: the one chosen at training), and after
    ``confirm_ms`` at the latest."""
    if name == "fixed":
        return FixedSilence(confirm_ms)
    if name == "adaptive":
        return AdaptiveSilence(final_ms if final_ms is not None else confirm_ms / 2, confirm_ms)
    if name == "predictor":
        predictor = EndOfTurnPredictor.load()
        return PredictorRule(threshold if threshold is not None else predictor.threshold, confirm_ms, predictor)
    raise ValueError(f"unknown confirmation rule {name!r}; choose 'fixed', 'adaptive' or 'predictor'")
