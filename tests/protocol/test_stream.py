"""FrameReader over byte streams: whole, byte by byte, and with trailing data (h11's way)."""

from __future__ import annotations

import pytest

from presence.protocol.errors import PayloadTooLarge, UnknownFrameType
from presence.protocol.frames import HEADER, MAGIC, AudioIn, Event, Frame, Ping, encode
from presence.protocol.stream import FrameReader

FRAMES: list[Frame] = [AudioIn(b"\x00\x01" * 160, seq=1, timestamp=320), Event({"type": "turn"}), Ping(timestamp=5)]
STREAM = b"".join(encode(f) for f in FRAMES)


def test_whole_stream_yields_every_frame() -> None:
    assert FrameReader().feed(STREAM) == FRAMES


def test_byte_by_byte_yields_the_same_frames() -> None:
    reader = FrameReader()
    out: list[Frame] = []
    for byte in STREAM:
        out += reader.feed(bytes([byte]))
    assert out == FRAMES
    assert reader.pending_bytes == 0


def test_trailing_partial_frame_is_held_not_lost() -> None:
    reader = FrameReader()
    extra = encode(Ping(timestamp=9))
    assert reader.feed(STREAM + extra[:5]) == FRAMES
    assert reader.pending_bytes == 5
    assert reader.feed(extra[5:]) == [Ping(timestamp=9)]


def test_bad_header_fails_before_its_payload_is_buffered() -> None:
    with pytest.raises(PayloadTooLarge):
        FrameReader().feed(HEADER.pack(MAGIC, 1, 0x10, 0, 0, 0, 0, 10**9))
    with pytest.raises(UnknownFrameType):
        FrameReader().feed(HEADER.pack(MAGIC, 1, 0x55, 0, 0, 0, 0, 0))
