"""Oculus-15 viseme weights → the weight set a client asked for in its hello.

Animators produce Oculus-15 weights only; ARKit blendshapes are a fixed linear map of them
(a 15 × 20 matrix, one row per viseme describing that mouth shape in ARKit terms), so a
blend of visemes becomes the same blend of blendshape poses. The rows follow how the
shapes are made: jaw opening from the viseme's openness, lips pressed and rolled for
p/b/m, lower lip tucked under the teeth for f/v, tongue between the teeth for th, corners
stretched for s/ee/eh, lips funnelled for sh/r/oh and puckered for oo/w.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from presence.lipsync.base import VISEMES
from presence.protocol.hello import ARKIT, OCULUS15, WEIGHT_SETS

ARKIT_NAMES: Final = WEIGHT_SETS[ARKIT][1]


class UnknownWeightSetError(ValueError):
    """The requested weight set has no mapping from Oculus-15 visemes."""


# Both sides of symmetric blendshapes get the same value; listed once here with a "*".
_ARKIT_POSES: Final[dict[str, dict[str, float]]] = {
    "sil": {},
    "PP": {"jawOpen": 0.04, "mouthClose": 0.1, "mouthPress*": 0.55, "mouthRollLower": 0.3, "mouthRollUpper": 0.2},
    "FF": {"jawOpen": 0.1, "mouthRollLower": 0.6, "mouthUpperUp*": 0.25, "mouthShrugUpper": 0.2},
    "TH": {"jawOpen": 0.16, "tongueOut": 0.45, "mouthLowerDown*": 0.1, "mouthStretch*": 0.1},
    "DD": {"jawOpen": 0.2, "mouthStretch*": 0.15, "mouthLowerDown*": 0.15},
    "kk": {"jawOpen": 0.27, "mouthStretch*": 0.15, "mouthLowerDown*": 0.1},
    "CH": {"jawOpen": 0.15, "mouthFunnel": 0.55, "mouthPucker": 0.2, "mouthUpperUp*": 0.2, "mouthLowerDown*": 0.2},
    "SS": {"jawOpen": 0.08, "mouthStretch*": 0.35, "mouthSmile*": 0.15, "mouthLowerDown*": 0.1},
    "nn": {"jawOpen": 0.18, "mouthStretch*": 0.1, "mouthLowerDown*": 0.1},
    "RR": {"jawOpen": 0.2, "mouthFunnel": 0.4, "mouthPucker": 0.3, "mouthRollLower": 0.1},
    "aa": {"jawOpen": 0.7, "mouthLowerDown*": 0.3, "mouthUpperUp*": 0.1, "mouthStretch*": 0.1},
    "E": {"jawOpen": 0.4, "mouthStretch*": 0.35, "mouthSmile*": 0.2, "mouthLowerDown*": 0.25, "mouthUpperUp*": 0.1},
    "ih": {"jawOpen": 0.25, "mouthStretch*": 0.3, "mouthSmile*": 0.35, "mouthUpperUp*": 0.1},
    "oh": {"jawOpen": 0.45, "mouthFunnel": 0.6, "mouthPucker": 0.25, "mouthLowerDown*": 0.1},
    "ou": {"jawOpen": 0.15, "mouthPucker": 0.8, "mouthFunnel": 0.35, "jawForward": 0.1},
}


def _arkit_matrix() -> npt.NDArray[np.float32]:
    column = {name: i for i, name in enumerate(ARKIT_NAMES)}
    matrix = np.zeros((len(VISEMES), len(ARKIT_NAMES)), dtype=np.float32)
    for row, viseme in enumerate(VISEMES):
        for shape, value in _ARKIT_POSES[viseme].items():
            names = [shape[:-1] + "Left", shape[:-1] + "Right"] if shape.endswith("*") else [shape]
            for name in names:
                matrix[row, column[name]] = value
    return matrix


#: Row ``i`` is viseme ``VISEMES[i]`` as ARKit blendshape weights (columns in ``ARKIT_NAMES`` order).
ARKIT_MATRIX: Final = _arkit_matrix()


def to_weight_set(weights15: npt.NDArray[np.floating], name: str) -> npt.NDArray[np.float32]:
    """Weights in ``name``'s order, finite and clipped to [0, 1].

    Accepts one frame (15,) or a batch (n, 15). Raises ``UnknownWeightSetError`` for a set
    that is not in ``WEIGHT_SETS`` (the hello negotiation should have prevented that).
    """
    clean = np.nan_to_num(np.asarray(weights15, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    clean = np.clip(clean, 0.0, 1.0)
    if clean.shape[-1] != len(VISEMES):
        raise ValueError(f"expected {len(VISEMES)} Oculus weights, got shape {clean.shape}")
    if name == OCULUS15:
        return clean
    if name == ARKIT:
        mapped: npt.NDArray[np.float32] = np.clip(clean @ ARKIT_MATRIX, 0.0, 1.0)
        return mapped
    raise UnknownWeightSetError(f"no mapping from oculus15 to weight set {name!r}")


def quantize(weights: npt.NDArray[np.floating]) -> bytes:
    """Weights in [0, 1] → one byte each (0..255, rounded) for the animation frame's payload.

    Out-of-range values clip, NaN becomes 0 (+inf 255, −inf 0): a broken frame closes the
    mouth rather than corrupting the stream.
    """
    clean = np.clip(np.nan_to_num(np.asarray(weights, dtype=np.float64), nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    return np.rint(clean * 255.0).astype(np.uint8).tobytes()
