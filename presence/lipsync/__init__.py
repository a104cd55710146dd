"""Lip-sync: reply audio (and phoneme marks, when the engine has them) → viseme frames.

``create_animator`` is the session's one entry point; ``to_weight_set`` maps the Oculus-15
weights every animator produces to the set the client negotiated, and ``quantize`` turns
them into the animation frame's bytes.
"""

from __future__ import annotations

import logging
from typing import Final

from presence.lipsync.acoustic import AudioAnimator
from presence.lipsync.aligned import AlignedAnimator
from presence.lipsync.audio import MlpAnimator
from presence.lipsync.base import Animator, EnergyAnimator, VisemeFrame
from presence.lipsync.phonemes import PhonemeAnimator
from presence.lipsync.sphinx_am import AcousticModelMissingError
from presence.lipsync.weightsets import quantize, to_weight_set

ANIMATOR_KINDS: Final = ("phonemes", "transcript", "audio", "audio-causal", "audio-mlp", "energy")

log = logging.getLogger(__name__)


class UnknownAnimatorError(ValueError):
    """``create_animator`` was asked for a kind it does not know."""


def create_animator(kind: str, sample_rate: int, fps: int = 60) -> Animator:
    """A fresh animator for one session's replies.

    ``"phonemes"`` animates from the chunks' phoneme marks (local TTS; no look-ahead);
    ``"transcript"`` aligns the reply's text (engines that stream it: Gemini, OpenAI) to its
    audio, using the audio on hand up to 250 ms past each frame, and decodes phones from
    the audio alone where the text is missing or wrong; ``"audio"`` is that decoder without
    the text; ``"audio-causal"`` reads pocketsphinx's acoustic model frame by frame (30 ms
    look-ahead). All three fall back on ``"audio-mlp"`` (the eSpeak-trained MLP, 27.5 ms)
    when pocketsphinx is not installed; ``"energy"`` opens the mouth with loudness.
    """
    if kind == "phonemes":
        return PhonemeAnimator(sample_rate, fps)
    if kind in ("transcript", "audio", "audio-causal"):
        try:
            if kind == "audio-causal":
                return AudioAnimator(sample_rate, fps)
            return AlignedAnimator(sample_rate, fps, use_text=kind == "transcript")
        except AcousticModelMissingError as exc:
            log.warning("audio lip-sync falls back on the MLP animator: %s", exc)
            return MlpAnimator(sample_rate, fps)
    if kind == "audio-mlp":
        return MlpAnimator(sample_rate, fps)
    if kind == "energy":
        return EnergyAnimator(sample_rate, fps)
    raise UnknownAnimatorError(f"unknown animator {kind!r}; choose one of {', '.join(ANIMATOR_KINDS)}")


__all__ = [
    "ANIMATOR_KINDS",
    "AlignedAnimator",
    "Animator",
    "AudioAnimator",
    "EnergyAnimator",
    "MlpAnimator",
    "PhonemeAnimator",
    "UnknownAnimatorError",
    "VisemeFrame",
    "create_animator",
    "quantize",
    "to_weight_set",
]
