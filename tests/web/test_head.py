"""The default 3D head: the shipped GLB is what the generator writes, and it has the morph
targets and eye nodes the page drives."""

from __future__ import annotations

import json
import struct

from presence import head
from presence.expression.blendshapes import EXPRESSION_WEIGHTS
from presence.protocol.hello import WEIGHT_SETS


def _document(data: bytes) -> dict[str, object]:
    magic, version, length = struct.unpack_from("<III", data)
    assert (magic, version, length) == (0x46546C67, 2, len(data))
    json_length, kind = struct.unpack_from("<II", data, 12)
    assert kind == 0x4E4F534A
    document: dict[str, object] = json.loads(data[20 : 20 + json_length])
    return document


def test_the_shipped_head_is_what_the_generator_writes() -> None:
    built = head.build()
    assert head.OUT.read_bytes() == built, "presence/web/head.glb is stale: run `python -m presence.head`"
    assert len(built) < 1_000_000


def test_the_head_has_every_streamed_arkit_shape_every_expression_shape_blinks_and_eyes() -> None:
    document = _document(head.build())
    names: set[str] = set()
    for mesh in document["meshes"]:  # type: ignore[attr-defined]
        names |= set(mesh.get("extras", {}).get("targetNames", []))
        for primitive in mesh["primitives"]:
            assert len(primitive.get("targets", [])) == len(mesh.get("extras", {}).get("targetNames", []))
    assert set(WEIGHT_SETS["arkit"][1]) <= names
    assert {shape for pose in EXPRESSION_WEIGHTS.values() for shape in pose} <= names
    assert {"eyeBlinkLeft", "eyeBlinkRight"} <= names
    nodes = {node["name"] for node in document["nodes"]}  # type: ignore[attr-defined]
    assert {"eyeLeft", "eyeRight", "mouth"} <= nodes
