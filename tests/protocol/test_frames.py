"""The v1 codec, tested with bytes: round trips, golden frames and every malformed input."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from presence.protocol import errors
from presence.protocol.frames import (
    HEADER,
    HEADER_BYTES,
    MAGIC,
    MAX_PAYLOAD_BYTES,
    Animation,
    AudioIn,
    AudioOut,
    ClientHello,
    Event,
    Flags,
    Frame,
    FrameType,
    Ping,
    Pong,
    ServerHello,
    decode,
    encode,
)

seqs = st.integers(0, 2**32 - 1)
timestamps = st.integers(-(2**63), 2**63 - 1)
flags = st.sampled_from([0, int(Flags.SEGMENT_START), int(Flags.SEGMENT_END), 3])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
bodies = st.dictionaries(st.text(max_size=10), json_values, max_size=5)
event_bodies = bodies.map(lambda b: {**b, "type": "turn"})


@st.composite
def animations(draw: st.DrawFn) -> Animation:
    per_frame = draw(st.integers(1, 64))
    count = draw(st.integers(1, 20))
    weights = draw(st.binary(min_size=per_frame * count, max_size=per_frame * count))
    return Animation(
        draw(st.integers(0, 255)),
        per_frame,
        draw(st.integers(0, 2**32 - 1)),
        weights,
        seq=draw(seqs),
        timestamp=draw(timestamps),
        flags=draw(flags),
    )


def common(cls: type) -> st.SearchStrategy[Frame]:
    return st.builds(cls, seq=seqs, timestamp=timestamps, flags=flags)


frames = st.one_of(
    st.builds(ClientHello, bodies, seq=seqs, timestamp=timestamps, flags=flags),
    st.builds(ServerHello, bodies, seq=seqs, timestamp=timestamps, flags=flags),
    st.builds(AudioIn, st.binary(max_size=2000), seq=seqs, timestamp=timestamps, flags=flags),
    st.builds(AudioOut, st.binary(max_size=2000), seq=seqs, timestamp=timestamps, flags=flags),
    animations(),
    st.builds(Event, event_bodies, seq=seqs, timestamp=timestamps, flags=flags),
    common(Ping),
    st.builds(Pong, timestamps, timestamps, seq=seqs, timestamp=timestamps, flags=flags),
)


@given(frames)
def test_decode_inverts_encode_for_every_frame_type(frame: Frame) -> None:
    assert decode(encode(frame)) == frame


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_protocol_errors(data: bytes) -> None:
    with contextlib.suppress(errors.ProtocolError):
        decode(data)


@given(frames, st.data())
def test_corrupting_any_byte_raises_only_protocol_errors(frame: Frame, data: st.DataObject) -> None:
    raw = bytearray(encode(frame))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] = data.draw(st.integers(0, 255))
    with contextlib.suppress(errors.ProtocolError):
        decode(bytes(raw))


def test_header_layout_is_24_little_endian_bytes() -> None:
    raw = encode(AudioIn(b"\x01\x02", seq=7, timestamp=16000, flags=Flags.SEGMENT_START))
    assert HEADER_BYTES == 24
    assert (
        raw
        == b"PV\x01\x10\x01\x00\x00\x00" + struct.pack("<I", 7) + struct.pack("<q", 16000) + b"\x02\x00\x00\x00\x01\x02"
    )


def test_golden_animation_frame() -> None:
    frame = Animation(weight_set=0, weights_per_frame=2, step_samples=400, weights=b"\x00\xff\x10\x20", timestamp=800)
    raw = encode(frame)
    assert raw[HEADER_BYTES:] == b"\x00\x02\x02\x00\x90\x01\x00\x00" + b"\x00\xff\x10\x20"
    assert decode(raw).frame_count == 2  # type: ignore[union-attr]


def test_golden_pong_and_json_payloads() -> None:
    assert encode(Pong(5, 6))[HEADER_BYTES:] == struct.pack("<qq", 5, 6)
    assert (
        encode(Event({"type": "turn", "state": "listening"}))[HEADER_BYTES:] == b'{"type":"turn","state":"listening"}'
    )


def header(
    frame_type: int = FrameType.AUDIO_IN,
    length: int = 0,
    magic: bytes = MAGIC,
    version: int = 1,
    flag_bits: int = 0,
    reserved: int = 0,
) -> bytes:
    return HEADER.pack(magic, version, frame_type, flag_bits, reserved, 0, 0, length)


@pytest.mark.parametrize(
    ("data", "error", "code"),
    [
        (b"", errors.TruncatedFrame, 4002),
        (header()[:23], errors.TruncatedFrame, 4002),
        (header(length=4) + b"ab", errors.TruncatedFrame, 4002),
        (header(length=1) + b"ab", errors.LengthMismatch, 4002),
        (header(magic=b"XX"), errors.BadMagic, 1002),
        (header(version=2), errors.UnsupportedVersion, 4000),
        (header(frame_type=0x7F), errors.UnknownFrameType, 4001),
        (header(flag_bits=0x0100), errors.ReservedBitsSet, 1002),
        (header(reserved=1), errors.ReservedBitsSet, 1002),
        (header(length=MAX_PAYLOAD_BYTES + 1), errors.PayloadTooLarge, 1009),
        (header(FrameType.EVENT, 5) + b"{bad}", errors.InvalidPayload, 1007),
        (header(FrameType.EVENT, 2) + b"\xff\xfe", errors.InvalidPayload, 1007),
        (header(FrameType.EVENT, 2) + b"[]", errors.InvalidPayload, 1007),
        (header(FrameType.EVENT, 2) + b"{}", errors.InvalidPayload, 1007),
        (header(FrameType.CLIENT_HELLO, 4) + b"null", errors.InvalidPayload, 1007),
        (header(FrameType.ANIMATION, 3) + b"\x00\x01\x00", errors.InvalidPayload, 1007),
        (header(FrameType.ANIMATION, 9) + b"\x00\x02\x01\x00\x00\x00\x00\x00\x07", errors.InvalidPayload, 1007),
        (header(FrameType.PING, 1) + b"x", errors.InvalidPayload, 1007),
        (header(FrameType.PONG, 8) + b"12345678", errors.InvalidPayload, 1007),
    ],
)
def test_each_malformed_input_raises_its_documented_error(
    data: bytes, error: type[errors.ProtocolError], code: int
) -> None:
    with pytest.raises(error) as caught:
        decode(data)
    assert caught.value.close_code == code
    assert 0 < len(caught.value.reason.encode()) <= 123


def test_oversized_payload_is_refused_from_the_header_alone() -> None:
    with pytest.raises(errors.PayloadTooLarge):
        decode(header(length=2**31))


def test_encoder_refuses_frames_it_could_never_send() -> None:
    with pytest.raises(ValueError):
        encode(AudioOut(b"x" * (MAX_PAYLOAD_BYTES + 1)))
    with pytest.raises(ValueError):
        encode(Event({"no": "type"}))
    with pytest.raises(ValueError):
        encode(Animation(0, 3, 1, b"\x00\x00"))
    with pytest.raises(ValueError):
        encode(Ping(flags=0x80))
