"""Wire protocol v1: a sans-I/O codec (no asyncio, no sockets). See docs/protocol.md."""

from presence.protocol.connection import Connection, Role, State
from presence.protocol.errors import CloseCode, ProtocolError
from presence.protocol.frames import (
    HEADER_BYTES,
    MAX_PAYLOAD_BYTES,
    VERSION,
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
from presence.protocol.stream import FrameReader

__all__ = [
    "HEADER_BYTES",
    "MAX_PAYLOAD_BYTES",
    "VERSION",
    "Animation",
    "AudioIn",
    "AudioOut",
    "ClientHello",
    "CloseCode",
    "Connection",
    "Event",
    "Flags",
    "Frame",
    "FrameReader",
    "FrameType",
    "Ping",
    "Pong",
    "ProtocolError",
    "Role",
    "ServerHello",
    "State",
    "decode",
    "encode",
]
