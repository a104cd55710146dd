"""Expressions as ARKit blendshape weights: the table both faces read (the page has a copy in
presence/web/expression.js; tests/expression checks the two agree).

Only brows, eyes, cheeks and the mouth corners carry expression: jaw and lip shapes belong to
speech. Values are the weights at intensity 1; ``*`` means both sides.
"""

from __future__ import annotations

from typing import Final

EXPRESSION_POSES: Final[dict[str, dict[str, float]]] = {
    "neutral": {},
    "happy": {"mouthSmile*": 0.6, "cheekSquint*": 0.5, "eyeSquint*": 0.25, "browOuterUp*": 0.1},
    "concerned": {"browInnerUp": 0.7, "browDown*": 0.15, "mouthFrown*": 0.35, "eyeSquint*": 0.1},
    "surprised": {"browInnerUp": 0.6, "browOuterUp*": 0.7, "eyeWide*": 0.6},
    "curious": {"browInnerUp": 0.4, "browOuterUpLeft": 0.6, "browOuterUpRight": 0.35, "eyeWide*": 0.15},
    "thinking": {"browInnerUp": 0.25, "browDownLeft": 0.3, "browOuterUpRight": 0.35, "eyeSquintLeft": 0.2},
    "emphasis": {"browInnerUp": 0.35, "browOuterUp*": 0.35, "eyeWide*": 0.2},
}


def _expand(pose: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in pose.items():
        for side in ("Left", "Right") if name.endswith("*") else ("",):
            out[name.rstrip("*") + side] = value
    return out


EXPRESSION_WEIGHTS: Final = {name: _expand(pose) for name, pose in EXPRESSION_POSES.items()}


def arkit_weights(name: str, intensity: float) -> dict[str, float]:
    """Blendshape weights of expression ``name`` at ``intensity`` (0 … 1), rounded for the wire."""
    k = min(1.0, max(0.0, intensity))
    return {shape: round(value * k, 3) for shape, value in EXPRESSION_WEIGHTS.get(name, {}).items()}
