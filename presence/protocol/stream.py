"""Incremental decoding for byte-stream transports (TCP, pipes, recorded traces).

WebSocket already frames messages; a stream does not, so ``FrameReader`` buffers bytes and
yields whole frames as soon as each is complete, whatever the chunking of its input.
"""

from __future__ import annotations

from presence.protocol.frames import HEADER_BYTES, Frame, decode, parse_header


class FrameReader:
    """Feed bytes in any pieces; get complete frames out, in order."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        while len(self._buffer) >= HEADER_BYTES:
            # Validate the header as soon as it is complete, so a bad length fails before we buffer it.
            header = parse_header(self._buffer)
            end = HEADER_BYTES + header.payload_length
            if len(self._buffer) < end:
                break
            frames.append(decode(memoryview(self._buffer)[:end]))
            del self._buffer[:end]
        return frames

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete frame held so far; non-zero at end of stream means truncation."""
        return len(self._buffer)
