"""The default 3D head, built procedurally: ``python -m presence.head`` writes presence/web/head.glb.

No third-party asset and nothing downloaded: a stylised head (skin, hair, ears, nose, neck
and shoulders) made of a few parametric surfaces, with

- a mouth whose dark cavity has zero height at rest and opens under the ARKit mouth and jaw
  blendshapes that presence streams (``jawOpen``, ``mouthFunnel``, ``mouthSmileLeft`` …), so
  the streamed weights drive it one to one; the cavity is unlit in exactly ``CAVITY`` (the 2D
  face's colour) so tests can count its pixels on screen;
- brows, eyelids and cheeks with the ARKit expression blendshapes (``browInnerUp``,
  ``browOuterUpLeft``, ``eyeBlinkLeft``, ``eyeWideLeft``, ``cheekSquintLeft`` …);
- eyes as their own nodes (``eyeLeft``, ``eyeRight``) that the page turns to look around.

Deterministic: the same code writes the same bytes (tests check the shipped file is current).
"""

from __future__ import annotations

import json
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
OUT: Final = Path(__file__).resolve().parent / "web" / "head.glb"

CAVITY: Final = (58, 13, 18)
SKIN: Final = (232, 185, 150)
HAIR: Final = (59, 42, 32)
LIP: Final = (181, 84, 90)
SHIRT: Final = (70, 96, 130)
IRIS: Final = (74, 107, 138)

# Head shape: an ellipsoid narrowed towards the jaw.
RX, RY, RZ = 0.86, 1.0, 0.85
MOUTH_Y, MOUTH_W, MOUTH_H = -0.42, 0.2, 0.17
EYE_X, EYE_Y, EYE_Z, EYE_R = 0.3, 0.12, 0.73, 0.14

#: The ARKit mouth and jaw blendshapes of the streamed weight set, as moves of the mouth's
#: edges: (corner spread, upper lip lift, lower lip drop, corner lift, roundness), at weight 1.
MOUTH_MOVES: Final[dict[str, tuple[float, float, float, float, float]]] = {
    "jawOpen": (0.0, 0.1, 1.0, 0.0, 0.0),
    "jawForward": (0.0, 0.0, 0.1, 0.0, 0.0),
    "mouthClose": (0.0, 0.0, 0.0, 0.0, 0.0),
    "mouthFunnel": (-0.25, 0.35, 0.45, 0.0, 1.0),
    "mouthPucker": (-0.4, 0.1, 0.15, 0.0, 1.0),
    "mouthSmileLeft": (0.08, 0.0, 0.0, 0.35, 0.0),
    "mouthSmileRight": (0.08, 0.0, 0.0, 0.35, 0.0),
    "mouthStretchLeft": (0.1, 0.0, 0.1, -0.05, 0.0),
    "mouthStretchRight": (0.1, 0.0, 0.1, -0.05, 0.0),
    "mouthRollLower": (0.0, 0.0, 0.0, 0.0, 0.0),
    "mouthRollUpper": (0.0, 0.0, 0.0, 0.0, 0.0),
    "mouthShrugLower": (0.0, 0.0, -0.05, 0.0, 0.0),
    "mouthShrugUpper": (0.0, 0.08, 0.0, 0.0, 0.0),
    "mouthPressLeft": (0.0, 0.0, 0.0, 0.0, 0.0),
    "mouthPressRight": (0.0, 0.0, 0.0, 0.0, 0.0),
    "mouthLowerDownLeft": (0.0, 0.0, 0.3, 0.0, 0.0),
    "mouthLowerDownRight": (0.0, 0.0, 0.3, 0.0, 0.0),
    "mouthUpperUpLeft": (0.0, 0.25, 0.0, 0.0, 0.0),
    "mouthUpperUpRight": (0.0, 0.25, 0.0, 0.0, 0.0),
    "tongueOut": (0.0, 0.0, 0.1, 0.0, 0.0),
    "mouthFrownLeft": (0.0, 0.0, 0.0, -0.3, 0.0),
    "mouthFrownRight": (0.0, 0.0, 0.0, -0.3, 0.0),
}


def _smooth(x: Array) -> Array:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _narrow(y: Array) -> Array:
    """Width factor of the head at height y: the jaw is narrower than the cranium."""
    return 1.0 - 0.18 * _smooth((-y - 0.1) / 0.8)


def surface_z(x: Array, y: Array) -> Array:
    """Depth of the face's front surface at (x, y)."""
    xn = x / (RX * _narrow(y))
    return RZ * np.sqrt(np.clip(1.0 - xn**2 - (y / RY) ** 2, 0.0, None))


@dataclass
class Part:
    """One primitive: positions, triangle indices, a material index, and named morph deltas."""

    positions: Array
    indices: npt.NDArray[np.uint32]
    material: int
    morphs: dict[str, Array] = field(default_factory=dict)


def _grid_indices(rows: int, cols: int, flip: bool = False) -> npt.NDArray[np.uint32]:
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(cols - 1), indexing="ij")
    a = (r * cols + c).ravel()
    b, d, e = a + 1, a + cols, a + cols + 1
    tris = np.stack([a, d, b, b, d, e], axis=1).reshape(-1, 3) if not flip else np.stack([a, b, d, b, e, d], 1)
    return tris.reshape(-1).astype(np.uint32)


def _ellipsoid(centre: tuple[float, float, float], radii: tuple[float, float, float], rows: int, cols: int) -> Array:
    theta = np.linspace(0, np.pi, rows)[:, None]  # from the top
    phi = np.linspace(-np.pi, np.pi, cols)[None, :]  # around, 0 facing the viewer (+z)
    x = np.sin(theta) * np.sin(phi)
    y = np.cos(theta) * np.ones_like(phi)
    z = np.sin(theta) * np.cos(phi)
    pts: Array = np.stack([x, y, z], axis=-1).reshape(-1, 3) * np.array(radii) + np.array(centre)
    return pts


def _head() -> Part:
    rows, cols = 40, 56
    p = _ellipsoid((0, 0, 0), (RX, RY, RZ), rows, cols)
    p[:, 0] *= _narrow(p[:, 1])
    front = np.clip(p[:, 2] / RZ, 0, 1)
    below = _smooth((MOUTH_Y - 0.03 - p[:, 1]) / 0.25) * front**2
    jaw = np.zeros_like(p)
    jaw[:, 1] = -0.09 * below * (1 - _smooth((np.abs(p[:, 0]) - 0.35) / 0.3))
    morphs = {"jawOpen": jaw}
    for side, name in ((1, "Left"), (-1, "Right")):  # the avatar's left is the viewer's right (+x)
        cheek = np.exp(-((p[:, 0] - side * 0.36) ** 2 + (p[:, 1] + 0.2) ** 2) / 0.012) * front
        lift = np.zeros_like(p)
        lift[:, 1] = 0.035 * cheek
        lift[:, 2] = 0.02 * cheek
        morphs[f"cheekSquint{name}"] = lift
        morphs[f"mouthSmile{name}"] = lift * 0.6
    return Part(p, _grid_indices(rows, cols), 0, morphs)


def _hair() -> Part:
    rows, cols = 30, 56
    p = _ellipsoid((0, 0.04, -0.02), (RX * 1.05, RY * 1.06, RZ * 1.06), rows, cols)
    idx = _grid_indices(rows, cols).reshape(-1, 3)
    centre = p[idx].mean(axis=1)
    fringe = 0.58 + 0.04 * np.cos(9 * centre[:, 0])
    keep = (centre[:, 1] > fringe) | ((centre[:, 2] < 0.1) & (centre[:, 1] > -0.55))
    keep &= ~((np.abs(centre[:, 0]) > 0.6) & (centre[:, 1] < 0.25) & (centre[:, 2] > -0.2))  # ears show
    return Part(p, idx[keep].reshape(-1).astype(np.uint32), 1)


def _blob(centre: tuple[float, float, float], radii: tuple[float, float, float], material: int) -> Part:
    rows, cols = 14, 20
    return Part(_ellipsoid(centre, radii, rows, cols), _grid_indices(rows, cols), material)


def _mouth_edges(move: tuple[float, float, float, float, float], n: int) -> tuple[Array, Array, Array]:
    """x, upper-edge y and lower-edge y of the mouth opening for one combination of moves."""
    spread, up, down, corner, round_ = move
    t = np.linspace(-1, 1, n)
    arch = np.sqrt(np.clip(1 - t**2, 0, None))
    rounded = arch ** (1 - 0.5 * round_) if round_ else arch
    x = t * MOUTH_W * (1 + spread)
    lift = corner * 0.14 * t**2
    upper = MOUTH_Y + MOUTH_H * up * rounded + lift
    lower = MOUTH_Y - MOUTH_H * down * rounded + lift
    return x, upper, lower


def _band(x: Array, y0: Array, y1: Array, dz: float) -> Array:
    """A strip between two curves (rows: y0 then y1) lying on the face surface, dz in front."""
    rows = [np.stack([x, y, surface_z(x, y) + dz], axis=1) for y in (y0, y1)]
    return np.concatenate(rows)


def _mouth() -> list[Part]:
    n = 25
    lip = 0.045 * np.sqrt(np.clip(1 - np.linspace(-1, 1, n) ** 2, 0, None)) + 0.012

    def shapes(move: tuple[float, float, float, float, float]) -> tuple[Array, Array, Array]:
        x, upper, lower = _mouth_edges(move, n)
        cavity = _band(x, upper, lower, 0.02)
        upper_lip = _band(x, upper + lip, upper, 0.03)
        lower_lip = _band(x, lower, lower - lip * 1.2, 0.03)
        return cavity, upper_lip, lower_lip

    rest = shapes((0.0, 0.0, 0.0, 0.0, 0.0))
    moved = {name: shapes(move) for name, move in MOUTH_MOVES.items()}
    parts = []
    for i, material in enumerate((2, 3, 3)):
        morphs = {name: moved[name][i] - rest[i] for name in MOUTH_MOVES}
        # Left/right blendshapes act on their own half (the avatar's left is +x on screen).
        for name, delta in morphs.items():
            if name.endswith(("Left", "Right")):
                side = 1.0 if name.endswith("Left") else -1.0
                xs = rest[i][:, 0] * side
                delta *= _smooth(xs / MOUTH_W * 2 + 0.5)[:, None]
        parts.append(Part(rest[i], _grid_indices(2, n, flip=i == 0), material, morphs))
    return parts


def _brows() -> Part:
    n = 12
    pieces, morph_rows = [], []
    for side in (1, -1):
        t = np.linspace(0, 1, n)  # 0 inner, 1 outer
        x = side * (0.1 + 0.32 * t)
        y = EYE_Y + 0.17 + 0.045 * np.sin(np.pi * (0.3 + 0.7 * t)) - 0.02 * t
        h = 0.045 * (1 - 0.5 * t)
        pieces.append(_band(x, y + h, y, 0.025))
        morph_rows.append((side, np.concatenate([t, t])))
    p = np.concatenate(pieces)
    morphs: dict[str, Array] = {}
    up = np.zeros_like(p)
    outer: dict[int, Array] = {}
    down: dict[int, Array] = {}
    for k, (side, t) in enumerate(morph_rows):
        sl = slice(k * 2 * n, (k + 1) * 2 * n)
        up[sl, 1] = 0.09 * (1 - t) ** 1.5
        o = np.zeros_like(p)
        o[sl, 1] = 0.09 * t**1.5
        outer[side] = o
        d = np.zeros_like(p)
        d[sl, 1] = -0.05 * (1 - 0.6 * t)
        d[sl, 0] = -side * 0.02 * (1 - t)
        down[side] = d
    morphs["browInnerUp"] = up
    for side, name in ((1, "Left"), (-1, "Right")):
        morphs[f"browOuterUp{name}"] = outer[side]
        morphs[f"browDown{name}"] = down[side]
    idx = np.concatenate([_grid_indices(2, n, flip=True), _grid_indices(2, n) + 2 * n])
    return Part(p, idx.astype(np.uint32), 1, morphs)


def _lid_shell(theta_max: float, rows: int, cols: int, r: float) -> Array:
    u = np.linspace(0, 1, rows)[:, None]
    phi = np.linspace(-np.pi / 2, np.pi / 2, cols)[None, :]
    theta = u * theta_max
    x = np.sin(theta) * np.sin(phi)
    y = np.cos(theta) * np.ones_like(phi)
    z = np.sin(theta) * np.cos(phi)
    return np.stack([x, y, z], axis=-1).reshape(-1, 3) * r


def _eyelids() -> Part:
    rows, cols = 10, 16
    opened, r = np.radians(68.0), EYE_R * 1.06
    base = _lid_shell(float(opened), rows, cols, r)
    poses = {"Blink": np.radians(172.0), "Wide": np.radians(40.0), "Squint": np.radians(85.0)}
    pieces, morphs = [], {}
    for side, name in ((1, "Left"), (-1, "Right")):
        centre = np.array([side * EYE_X, EYE_Y, EYE_Z])
        pieces.append((side, name, base + centre))
    p = np.concatenate([piece for _, _, piece in pieces])
    count = rows * cols
    for k, (_, name, _) in enumerate(pieces):
        for pose, theta in poses.items():
            delta = np.zeros_like(p)
            delta[k * count : (k + 1) * count] = _lid_shell(float(theta), rows, cols, r) - base
            morphs[f"eye{pose}{name}"] = delta
    idx = np.concatenate([_grid_indices(rows, cols, flip=True) + k * count for k in range(2)])
    return Part(p, idx.astype(np.uint32), 0, morphs)


def _eye() -> list[Part]:
    rows, cols = 16, 24
    theta = np.linspace(0, np.pi, rows)[:, None]
    phi = np.linspace(-np.pi, np.pi, cols)[None, :]
    # Poles on the z axis so the iris and pupil are round caps around the gaze direction.
    d = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta) * np.ones_like(phi)], -1)
    d = d.reshape(-1, 3)
    idx = _grid_indices(rows, cols, flip=True)
    tris = idx.reshape(-1, 3)
    cz = d[tris].mean(axis=1)[:, 2]
    sclera = Part(d * EYE_R, tris[cz < np.cos(np.radians(30))].reshape(-1).astype(np.uint32), 4)
    iris = Part(d * EYE_R * 1.004, tris[(cz >= np.cos(np.radians(30)))].reshape(-1).astype(np.uint32), 5)
    pupil_d = _ellipsoid((0, 0, EYE_R * 0.99), (EYE_R * 0.18, EYE_R * 0.18, EYE_R * 0.03), 8, 12)
    pupil = Part(pupil_d, _grid_indices(8, 12), 6)
    return [sclera, iris, pupil]


def _normals(positions: Array, indices: npt.NDArray[np.uint32]) -> Array:
    tris = indices.reshape(-1, 3)
    a, b, c = (positions[tris[:, k]] for k in range(3))
    face = np.cross(b - a, c - a)
    normals = np.zeros_like(positions)
    for k in range(3):
        np.add.at(normals, tris[:, k], face)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.where(length > 0, normals / np.where(length > 0, length, 1), np.array([0.0, 0.0, 1.0]))


def _linear(srgb: tuple[int, int, int]) -> list[float]:
    c = np.array(srgb, dtype=np.float64) / 255
    return [*np.round(np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4), 6).tolist(), 1.0]


class _Writer:
    def __init__(self) -> None:
        self.blobs: list[bytes] = []
        self.views: list[dict[str, Any]] = []
        self.accessors: list[dict[str, Any]] = []

    def add(self, array: npt.NDArray[Any], kind: str, target: int | None = None) -> int:
        offset = sum(len(b) for b in self.blobs)
        data = array.tobytes()
        self.blobs.append(data + b"\0" * (-len(data) % 4))
        view: dict[str, Any] = {"buffer": 0, "byteOffset": offset, "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        self.views.append(view)
        accessor: dict[str, Any] = {
            "bufferView": len(self.views) - 1,
            "componentType": 5125 if array.dtype == np.uint32 else 5126,
            "count": len(array),
            "type": kind,
        }
        if kind == "VEC3":
            accessor["min"] = np.round(array.min(axis=0), 6).tolist()
            accessor["max"] = np.round(array.max(axis=0), 6).tolist()
        self.accessors.append(accessor)
        return len(self.accessors) - 1

    def primitive(self, part: Part, target_names: list[str]) -> dict[str, Any]:
        positions = part.positions.astype(np.float32)
        prim: dict[str, Any] = {
            "attributes": {
                "POSITION": self.add(positions, "VEC3", 34962),
                "NORMAL": self.add(_normals(part.positions, part.indices).astype(np.float32), "VEC3", 34962),
            },
            "indices": self.add(part.indices, "SCALAR", 34963),
            "material": part.material,
        }
        if target_names:
            zero = np.zeros_like(positions)
            prim["targets"] = [
                {"POSITION": self.add(part.morphs.get(name, zero).astype(np.float32), "VEC3", 34962)}
                for name in target_names
            ]
        return prim


def build() -> bytes:
    """The GLB bytes of the default head."""
    w = _Writer()
    meshes: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []

    def mesh(name: str, parts: list[Part], translation: tuple[float, float, float] | None = None) -> int:
        names = sorted({n for part in parts for n in part.morphs})
        body: dict[str, Any] = {"name": name, "primitives": [w.primitive(p, names) for p in parts]}
        if names:
            body["weights"] = [0.0] * len(names)
            body["extras"] = {"targetNames": names}
        meshes.append(body)
        node: dict[str, Any] = {"name": name, "mesh": len(meshes) - 1}
        if translation is not None:
            node["translation"] = list(translation)
        nodes.append(node)
        return len(nodes) - 1

    body_parts = [
        _blob((0, -1.0, -0.1), (0.3, 0.45, 0.3), 0),  # neck
        _blob((0, -1.55, -0.1), (1.15, 0.38, 0.55), 7),  # shoulders
        _blob((RX * 0.98, -0.02, -0.08), (0.08, 0.19, 0.12), 0),  # ears
        _blob((-RX * 0.98, -0.02, -0.08), (0.08, 0.19, 0.12), 0),
        _blob((0, -0.12, float(surface_z(np.zeros(1), np.full(1, -0.12))[0]) - 0.05), (0.085, 0.17, 0.13), 0),  # nose
    ]
    roots = [
        mesh("head", [_head()]),
        mesh("hair", [_hair()]),
        mesh("body", body_parts),
        mesh("mouth", _mouth()),
        mesh("brows", [_brows()]),
        mesh("eyelids", [_eyelids()]),
    ]
    eye_parts = _eye()
    for side, name in ((1, "eyeLeft"), (-1, "eyeRight")):
        roots.append(mesh(name, eye_parts, (side * EYE_X, EYE_Y, EYE_Z)))
    unlit: dict[str, Any] = {"KHR_materials_unlit": {}}

    def material(name: str, colour: tuple[int, int, int], roughness: float, plain: bool = False) -> dict[str, Any]:
        m: dict[str, Any] = {
            "doubleSided": True,
            "name": name,
            "pbrMetallicRoughness": {
                "baseColorFactor": _linear(colour),
                "metallicFactor": 0.0,
                "roughnessFactor": roughness,
            },
        }
        if plain:
            m["extensions"] = unlit
        return m

    binary = b"".join(w.blobs)
    document = {
        "asset": {"version": "2.0", "generator": "presence.head"},
        "extensionsUsed": ["KHR_materials_unlit"],
        "scene": 0,
        "scenes": [{"nodes": [len(nodes)]}],
        "nodes": [*nodes, {"name": "presence-head", "children": roots}],
        "materials": [
            material("skin", SKIN, 0.65),
            material("hair", HAIR, 0.8),
            material("cavity", CAVITY, 1.0, plain=True),
            material("lips", LIP, 0.5),
            material("sclera", (245, 245, 240), 0.3),
            material("iris", IRIS, 0.3),
            material("pupil", (15, 15, 18), 0.2),
            material("shirt", SHIRT, 0.9),
        ],
        "meshes": meshes,
        "accessors": w.accessors,
        "bufferViews": w.views,
        "buffers": [{"byteLength": len(binary)}],
    }
    text = json.dumps(document, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    chunks = struct.pack("<II", len(text), 0x4E4F534A) + text + struct.pack("<II", len(binary), 0x004E4942) + binary
    return struct.pack("<III", 0x46546C67, 2, 12 + len(chunks)) + chunks


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    data = build()
    out.write_bytes(data)
    print(f"wrote {out} ({len(data) / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
