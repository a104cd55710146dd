"""A tiny GLB head built in code, with morph targets named as a user's model would name them.

No free head with Oculus viseme or ARKit morph targets is available from the package
registries, so the tests make one: a skin-coloured face and a mouth whose cavity has zero
height at rest; every mouth morph target drops its lower edge by how open that viseme is.
Materials are unlit (KHR_materials_unlit) so the cavity shows on screen in exactly CAVITY.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

CAVITY = (58, 13, 18)  # sRGB on screen, as the 2D face uses
SKIN = (232, 185, 150)
OPEN_DROP = 0.35  # how far the lower lip drops at full openness (the face is 2.4 high)

#: Oculus visemes → openness of the jaw (as docs VISEMES.md gives it, roughly).
OCULUS_OPENNESS = {
    "sil": 0.0, "PP": 0.0, "FF": 0.15, "TH": 0.2, "DD": 0.25, "kk": 0.3, "CH": 0.25, "SS": 0.15,
    "nn": 0.25, "RR": 0.3, "aa": 1.0, "E": 0.6, "ih": 0.45, "oh": 0.7, "ou": 0.35,
}  # fmt: skip
ARKIT_OPENNESS = {"jawOpen": 1.0, "mouthClose": 0.0, "mouthFunnel": 0.1, "mouthPucker": 0.0}


def _linear(srgb: tuple[int, int, int]) -> list[float]:
    c = np.array(srgb, dtype=np.float64) / 255
    return [*np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).tolist(), 1.0]


def head_glb(convention: str) -> bytes:
    """The GLB bytes of a head whose mouth morphs follow ``convention`` ("oculus15" or "arkit")."""
    if convention == "oculus15":
        targets = {f"viseme_{name}": openness for name, openness in OCULUS_OPENNESS.items()}
    else:
        targets = {**ARKIT_OPENNESS, "eyeBlinkLeft": 0.0, "eyeBlinkRight": 0.0}
    face = np.array([[-1, -1.2, 0], [1, -1.2, 0], [1, 1.2, 0], [-1, 1.2, 0]], np.float32)
    mouth = np.array([[-0.35, -0.5, 0.01], [0.35, -0.5, 0.01], [0.35, -0.5, 0.01], [-0.35, -0.5, 0.01]], np.float32)
    quad = np.array([0, 1, 2, 0, 2, 3], np.uint16)  # counter-clockwise, facing the camera
    lips = np.array([0, 2, 1, 0, 3, 2], np.uint16)  # the same once the lower edge has dropped
    blobs: list[bytes] = []
    accessors: list[dict[str, object]] = []
    views: list[dict[str, object]] = []

    def add(array: np.ndarray, kind: str, target: int | None) -> int:
        offset = sum(len(b) for b in blobs)
        data = array.tobytes()
        blobs.append(data + b"\0" * (-len(data) % 4))
        view: dict[str, object] = {"buffer": 0, "byteOffset": offset, "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        views.append(view)
        accessor: dict[str, object] = {
            "bufferView": len(views) - 1,
            "componentType": 5123 if array.dtype == np.uint16 else 5126,
            "count": len(array),
            "type": kind,
        }
        if kind == "VEC3":
            accessor["min"], accessor["max"] = array.min(axis=0).tolist(), array.max(axis=0).tolist()
        accessors.append(accessor)
        return len(accessors) - 1

    indices = add(quad, "SCALAR", 34963)
    mouth_indices = add(lips, "SCALAR", 34963)
    face_positions = add(face, "VEC3", 34962)
    mouth_positions = add(mouth, "VEC3", 34962)
    morphs = []
    for openness in targets.values():
        delta = np.zeros_like(mouth)
        delta[2:, 1] = -OPEN_DROP * openness  # the lower edge (vertices 2 and 3) drops
        morphs.append({"POSITION": add(delta, "VEC3", 34962)})
    binary = b"".join(blobs)
    unlit: dict[str, dict[str, object]] = {"KHR_materials_unlit": {}}
    document = {
        "asset": {"version": "2.0", "generator": "presence tests"},
        "extensionsUsed": ["KHR_materials_unlit"],
        "scene": 0,
        "scenes": [{"nodes": [0, 1]}],
        "nodes": [{"mesh": 0, "name": "face"}, {"mesh": 1, "name": "mouth"}],
        "materials": [
            {"pbrMetallicRoughness": {"baseColorFactor": _linear(SKIN)}, "extensions": unlit},
            {"pbrMetallicRoughness": {"baseColorFactor": _linear(CAVITY)}, "extensions": unlit},
        ],
        "meshes": [
            {"primitives": [{"attributes": {"POSITION": face_positions}, "indices": indices, "material": 0}]},
            {
                "primitives": [
                    {
                        "attributes": {"POSITION": mouth_positions},
                        "indices": mouth_indices,
                        "material": 1,
                        "targets": morphs,
                    }
                ],
                "weights": [0.0] * len(morphs),
                "extras": {"targetNames": list(targets)},
            },
        ],
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": len(binary)}],
    }
    text = json.dumps(document).encode()
    text += b" " * (-len(text) % 4)
    chunks = struct.pack("<II", len(text), 0x4E4F534A) + text + struct.pack("<II", len(binary), 0x004E4942) + binary
    return struct.pack("<III", 0x46546C67, 2, 12 + len(chunks)) + chunks


def write_head_glb(path: Path, convention: str) -> Path:
    path.write_bytes(head_glb(convention))
    return path
