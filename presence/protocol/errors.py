"""The protocol's errors: one hierarchy, each class with the WebSocket close code it maps to.

A decoder either returns a frame or raises a ``ProtocolError`` subclass; nothing else
escapes it (a property test holds it to that). The transport turns the error into a
close frame carrying ``close_code`` and ``reason`` and never internal details.
"""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    """WebSocket close codes used by presence; docs/protocol.md is the normative table."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013
    UNSUPPORTED_VERSION = 4000
    UNKNOWN_FRAME_TYPE = 4001
    TRUNCATED_FRAME = 4002
    WRONG_DIRECTION = 4003
    UNEXPECTED_FRAME = 4004
    NEGOTIATION_FAILED = 4005
    SLOW_CONSUMER = 4008
    IDLE_TIMEOUT = 4009
    UNAUTHORIZED = 4401
    FORBIDDEN_ORIGIN = 4403


class ProtocolError(Exception):
    """Base of every error the codec raises; ``close_code`` says how the session ends."""

    close_code: CloseCode = CloseCode.PROTOCOL_ERROR

    @property
    def reason(self) -> str:
        """Close reason: the message, clipped to fit a WebSocket close frame (123 bytes)."""
        text = str(self) or type(self).__name__
        return text.encode("utf-8")[:123].decode("utf-8", errors="ignore")


class BadMagic(ProtocolError):
    """The first two bytes are not the presence magic: not a presence frame at all."""


class ReservedBitsSet(ProtocolError):
    """A flag bit or reserved field that version 1 does not define is non-zero."""


class UnsupportedVersion(ProtocolError):
    """The frame's version byte names a protocol version this peer does not speak."""

    close_code = CloseCode.UNSUPPORTED_VERSION


class UnknownFrameType(ProtocolError):
    """The frame type byte is not one that version 1 defines."""

    close_code = CloseCode.UNKNOWN_FRAME_TYPE


class TruncatedFrame(ProtocolError):
    """Fewer bytes than the header, or than the header's payload length, arrived."""

    close_code = CloseCode.TRUNCATED_FRAME


class LengthMismatch(ProtocolError):
    """A message holds more bytes than its header's payload length (trailing data)."""

    close_code = CloseCode.TRUNCATED_FRAME


class PayloadTooLarge(ProtocolError):
    """The payload length exceeds ``MAX_PAYLOAD_BYTES``; the frame is refused unread."""

    close_code = CloseCode.MESSAGE_TOO_BIG


class InvalidPayload(ProtocolError):
    """The payload does not parse for its type: bad UTF-8 or JSON, missing fields, bad sizes."""

    close_code = CloseCode.INVALID_PAYLOAD


class WrongDirection(ProtocolError):
    """A frame type that only the other peer may send (e.g. a client sending audio out)."""

    close_code = CloseCode.WRONG_DIRECTION


class UnexpectedFrame(ProtocolError):
    """A valid frame at the wrong moment: media before the hello, or a second hello."""

    close_code = CloseCode.UNEXPECTED_FRAME


class NegotiationFailed(ProtocolError):
    """The hello offers nothing the server can use (no common audio format or weight set)."""

    close_code = CloseCode.NEGOTIATION_FAILED


class InputOutOfBounds(ProtocolError):
    """Client-controlled time or rate beyond what the session's real clock allows: audio stamped
    ahead of real time, more audio than real time, or frames faster than any microphone sends."""

    close_code = CloseCode.POLICY_VIOLATION


class ServerBusy(ProtocolError):
    """The server cannot take this session now (its session limit); try again later."""

    close_code = CloseCode.TRY_AGAIN_LATER
