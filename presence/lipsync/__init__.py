"""Lip-sync: reply audio (and phoneme marks, when the engine has them) → viseme frames.

``create_animator`` is the session's one entry point; ``to_weight_set`` maps the Oculus-15
weights every animator produces to the set the client negotiated.
"""

from __future__ import annotations

from typing import Final

from presence.lipsync.audio import AudioAnimator
from presence.lipsync.base import Animator, EnergyAnimator, VisemeFrame
from presence.lipsync.phonemes import PhonemeAnimator
from presence.lipsync.weightsets import to_weight_set

ANIMATOR_KINDS: Final = ("phonemes", "audio", "energy")


class UnknownAnimatorError(ValueError):
    """``create_animator`` was asked for a kind it does not know."""


def create_animator(kind: str, sample_rate: int, fps: int = 60) -> Animator:
    """A fresh animator for one session's replies.

    ``"phonemes"`` animates from the chunks' phoneme marks (local TTS); ``"audio"`` infers
    visemes from the reply audio (engines that send audio only; 27.5 ms look-ahead);
    ``"energy"`` opens the mouth with loudness (the baseline, 5 ms look-ahead at 100 fps).
    """
    if kind == "phonemes":
        return PhonemeAnimator(sample_rate, fps)
    if kind == "audio":
        return AudioAnimator(sample_rate, fps)
    if kind == "energy":
        return EnergyAnimator(sample_rate, fps)
    raise UnknownAnimatorError(f"unknown animator {kind!r}; choose one of {', '.join(ANIMATOR_KINDS)}")


__all__ = [
    "ANIMATOR_KINDS",
    "Animator",
    "AudioAnimator",
    "EnergyAnimator",
    "PhonemeAnimator",
    "UnknownAnimatorError",
    "VisemeFrame",
    "create_animator",
    "to_weight_set",
]
