"""Binary frames of wire protocol v1: a fixed 24-byte little-endian header, then a typed payload.

Pure functions over bytes: ``encode(frame) -> bytes`` and ``decode(data) -> frame``. No I/O.
docs/protocol.md is the normative description; keep the two in step.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Any, Final, TypeAlias, assert_never

from presence.protocol.errors import (
    BadMagic,
    InvalidPayload,
    LengthMismatch,
    PayloadTooLarge,
    ReservedBitsSet,
    TruncatedFrame,
    UnknownFrameType,
    UnsupportedVersion,
)

MAGIC: Final = b"PV"
VERSION: Final = 1
HEADER = struct.Struct("<2sBBHHIqI")  # magic, version, type, flags, reserved, seq, timestamp, length
HEADER_BYTES: Final = HEADER.size  # 24
MAX_PAYLOAD_BYTES: Final = 64 * 1024
MAX_FRAME_BYTES: Final = HEADER_BYTES + MAX_PAYLOAD_BYTES
_U32_MAX: Final = 2**32 - 1
_I64_MIN: Final = -(2**63)
_I64_MAX: Final = 2**63 - 1


class FrameType(IntEnum):
    """Frame type byte; the high nibble groups control, media and animation."""

    CLIENT_HELLO = 0x01
    SERVER_HELLO = 0x02
    AUDIO_IN = 0x10
    AUDIO_OUT = 0x11
    ANIMATION = 0x20
    EVENT = 0x30
    PING = 0x40
    PONG = 0x41


class Flags(IntFlag):
    """Header flag bits. Bits not listed here must be zero in version 1."""

    NONE = 0
    SEGMENT_START = 0x0001  # first media frame of an output segment (a reply) or of a user turn
    SEGMENT_END = 0x0002  # last media frame of that segment


DEFINED_FLAGS: Final = int(Flags.SEGMENT_START | Flags.SEGMENT_END)


@dataclass(frozen=True, slots=True)
class ClientHello:
    """Client → server, first frame. ``body`` is the JSON object described in docs/protocol.md."""

    body: dict[str, Any]
    seq: int = 0
    timestamp: int = 0
    flags: int = 0


@dataclass(frozen=True, slots=True)
class ServerHello:
    """Server → client answer to the hello: what was chosen, and the session id."""

    body: dict[str, Any]
    seq: int = 0
    timestamp: int = 0
    flags: int = 0


@dataclass(frozen=True, slots=True)
class AudioIn:
    """User audio in the negotiated input format; ``timestamp`` is the input-timeline sample."""

    data: bytes
    seq: int = 0
    timestamp: int = 0
    flags: int = 0


@dataclass(frozen=True, slots=True)
class AudioOut:
    """Agent audio in the negotiated output format; ``timestamp`` is the output-timeline sample."""

    data: bytes
    seq: int = 0
    timestamp: int = 0
    flags: int = 0


@dataclass(frozen=True, slots=True)
class Animation:
    """``frame_count`` animation frames of one weight set, each ``len(weights)/frame_count`` u8 weights.

    Frame ``i`` describes output-timeline sample ``timestamp + i * step_samples``.
    """

    weight_set: int
    weights_per_frame: int
    step_samples: int
    weights: bytes
    seq: int = 0
    timestamp: int = 0
    flags: int = 0

    @property
    def frame_count(self) -> int:
        return len(self.weights) // self.weights_per_frame if self.weights_per_frame else 0


@dataclass(frozen=True, slots=True)
class Event:
    """A JSON object with a string ``type``: turn states, transcripts, metrics, errors, gestures."""

    body: dict[str, Any]
    seq: int = 0
    timestamp: int = 0
    flags: int = 0


@dataclass(frozen=True, slots=True)
class Ping:
    """``timestamp`` is the sender's monotonic clock in microseconds."""

    seq: int = 0
    timestamp: int = 0
    flags: int = 0


@dataclass(frozen=True, slots=True)
class Pong:
    """Answer to a ping: echoes its timestamp and says when it was received (responder µs).

    ``timestamp`` is the responder's clock when the pong was sent, so the pinger can compute
    RTT and the clock offset as NTP does.
    """

    echo_timestamp: int
    received_at: int
    seq: int = 0
    timestamp: int = 0
    flags: int = 0


Frame: TypeAlias = ClientHello | ServerHello | AudioIn | AudioOut | Animation | Event | Ping | Pong

FRAME_TYPE_OF: Final[dict[type[Any], FrameType]] = {
    ClientHello: FrameType.CLIENT_HELLO,
    ServerHello: FrameType.SERVER_HELLO,
    AudioIn: FrameType.AUDIO_IN,
    AudioOut: FrameType.AUDIO_OUT,
    Animation: FrameType.ANIMATION,
    Event: FrameType.EVENT,
    Ping: FrameType.PING,
    Pong: FrameType.PONG,
}

_ANIMATION_HEAD = struct.Struct("<BBHI")  # weight set, weights per frame, frame count, step samples
_PONG_BODY = struct.Struct("<qq")


@dataclass(frozen=True, slots=True)
class Header:
    frame_type: FrameType
    flags: int
    seq: int
    timestamp: int
    payload_length: int
    version: int = VERSION


def parse_header(data: bytes | bytearray | memoryview) -> Header:
    """Validate and parse the first ``HEADER_BYTES`` of ``data`` (which may hold more)."""
    if len(data) < HEADER_BYTES:
        raise TruncatedFrame(f"frame of {len(data)} bytes is shorter than the {HEADER_BYTES}-byte header")
    magic, version, type_byte, flags, reserved, seq, timestamp, length = HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise BadMagic("not a presence frame (bad magic)")
    if version != VERSION:
        raise UnsupportedVersion(f"protocol version {version} is not supported; this server speaks {VERSION}")
    try:
        frame_type = FrameType(type_byte)
    except ValueError:
        raise UnknownFrameType(f"unknown frame type 0x{type_byte:02x}") from None
    if flags & ~DEFINED_FLAGS or reserved:
        raise ReservedBitsSet("undefined flag bits or reserved header field set")
    if length > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(f"payload of {length} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte limit")
    return Header(frame_type, flags, seq, timestamp, length)


def decode(data: bytes | bytearray | memoryview) -> Frame:
    """Decode exactly one frame; ``data`` must hold the header and payload and nothing more."""
    header = parse_header(data)
    available = len(data) - HEADER_BYTES
    if available < header.payload_length:
        raise TruncatedFrame(f"payload has {available} of {header.payload_length} bytes")
    if available > header.payload_length:
        raise LengthMismatch(f"{available - header.payload_length} bytes after the declared payload")
    payload = bytes(data[HEADER_BYTES:])
    return _decode_payload(header, payload)


def encode(frame: Frame) -> bytes:
    """Encode a frame; raises ``ValueError`` for a frame this side could never legally send."""
    frame_type = FRAME_TYPE_OF[type(frame)]
    payload = _encode_payload(frame)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    if frame.flags & ~DEFINED_FLAGS:
        raise ValueError(f"undefined flag bits 0x{frame.flags:04x}")
    if not 0 <= frame.seq <= _U32_MAX or not _I64_MIN <= frame.timestamp <= _I64_MAX:
        raise ValueError("seq must fit u32 and timestamp i64")
    header = HEADER.pack(MAGIC, VERSION, frame_type, frame.flags, 0, frame.seq, frame.timestamp, len(payload))
    return header + payload


def _json_payload(payload: bytes) -> dict[str, Any]:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPayload("JSON payload is not valid UTF-8") from None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        # ValueError covers JSONDecodeError and also CPython's cap on integer digits (4300):
        # a 5000-digit number is bad input like any other, not an internal error.
        raise InvalidPayload("payload is not valid JSON (or holds a number too long to parse)") from None
    if not isinstance(value, dict):
        raise InvalidPayload("JSON payload must be an object")
    return value


def _json_bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _decode_payload(header: Header, payload: bytes) -> Frame:
    common = {"seq": header.seq, "timestamp": header.timestamp, "flags": header.flags}
    match header.frame_type:
        case FrameType.CLIENT_HELLO:
            return ClientHello(_json_payload(payload), **common)
        case FrameType.SERVER_HELLO:
            return ServerHello(_json_payload(payload), **common)
        case FrameType.AUDIO_IN:
            return AudioIn(payload, **common)
        case FrameType.AUDIO_OUT:
            return AudioOut(payload, **common)
        case FrameType.ANIMATION:
            return _decode_animation(payload, common)
        case FrameType.EVENT:
            body = _json_payload(payload)
            if not isinstance(body.get("type"), str):
                raise InvalidPayload("event must have a string 'type'")
            return Event(body, **common)
        case FrameType.PING:
            if payload:
                raise InvalidPayload("ping carries no payload")
            return Ping(**common)
        case FrameType.PONG:
            if len(payload) != _PONG_BODY.size:
                raise InvalidPayload(f"pong payload must be {_PONG_BODY.size} bytes")
            echo, received = _PONG_BODY.unpack(payload)
            return Pong(echo, received, **common)
        case _:  # pragma: no cover - FrameType is exhaustive
            assert_never(header.frame_type)


def _decode_animation(payload: bytes, common: dict[str, int]) -> Animation:
    if len(payload) < _ANIMATION_HEAD.size:
        raise InvalidPayload("animation payload shorter than its 8-byte head")
    weight_set, per_frame, count, step = _ANIMATION_HEAD.unpack_from(payload)
    weights = payload[_ANIMATION_HEAD.size :]
    if per_frame == 0 or count == 0 or len(weights) != per_frame * count:
        raise InvalidPayload(f"animation holds {len(weights)} weight bytes, expected {per_frame}×{count}")
    return Animation(weight_set, per_frame, step, weights, **common)


def _encode_payload(frame: Frame) -> bytes:
    match frame:
        case ClientHello(body=body) | ServerHello(body=body):
            return _json_bytes(body)
        case Event(body=body):
            if not isinstance(body.get("type"), str):
                raise ValueError("event must have a string 'type'")
            return _json_bytes(body)
        case AudioIn(data=data) | AudioOut(data=data):
            return bytes(data)
        case Animation():
            count = frame.frame_count
            if frame.weights_per_frame == 0 or count == 0 or len(frame.weights) != count * frame.weights_per_frame:
                raise ValueError("animation weights must be a whole, non-empty number of frames")
            return _ANIMATION_HEAD.pack(frame.weight_set, frame.weights_per_frame, count, frame.step_samples) + bytes(
                frame.weights
            )
        case Ping():
            return b""
        case Pong(echo_timestamp=echo, received_at=received):
            return _PONG_BODY.pack(echo, received)
    raise TypeError(f"not a frame: {frame!r}")  # pragma: no cover - exhaustive above
