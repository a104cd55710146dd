"""Listening faces: the avatar mirrors the user's emotional tone, gently, from what they said.

Pure. Only the feelings a listener reflects are mirrored (pleasure, concern, surprise), at
half the intensity the same words would get in a reply; questions and neutral statements
leave the face to the turn machine (attentive, then thinking).
"""

from __future__ import annotations

from typing import Any, Final

from presence.expression.blendshapes import arkit_weights
from presence.expression.scorer import score

MIRRORED: Final = ("happy", "concerned", "surprised")
MIRROR_GAIN: Final = 0.5
MIRROR_RAMP_MS: Final = 600
MAX_CHARS: Final = 2000  # the tail of a long monologue is what the listener reacts to


def mirror_event(text: str, turn_id: int | None) -> dict[str, Any] | None:
    """The ``expression`` event (``at`` null: now) for the user's words, or None."""
    expression = score(text[-MAX_CHARS:])
    if expression.name not in MIRRORED:
        return None
    intensity = round(expression.intensity * MIRROR_GAIN, 3)
    return {
        "type": "expression",
        "name": expression.name,
        "intensity": intensity,
        "at": None,
        "ramp_ms": MIRROR_RAMP_MS,
        "turn_id": turn_id,
        "source": "user",
        "weights": arkit_weights(expression.name, intensity),
    }
