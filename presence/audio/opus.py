"""Opus for the wire: one 20 ms, 48 kHz mono packet per frame, decoded and encoded with PyAV.

The ``av`` wheel bundles libopus, so no system library is needed. Raw packets carry no Ogg
header, so the *pre-skip* that a container would announce is handled here: an Opus encoder
runs ``OPUS_PRE_SKIP_SAMPLES`` (312 at 48 kHz, 6.5 ms) behind its input, and the first that many
decoded samples of a stream are the encoder's look-ahead, not audio. docs/protocol.md fixes
the convention: timestamps refer to the PCM *after* pre-skip removal. So

* ``OpusDecoder`` drops the first 312 samples of the first packet it decodes; every later
  packet decodes to 960 samples that continue the stream exactly. The browser therefore
  stamps its first packet with the input sample of its first input sample ``E`` and packet
  ``n ≥ 1`` with ``E + 960·n − 312`` (see presence/web/capture.js).
* ``OpusEncoder`` is the mirror image for output audio: its packets, decoded and stripped of
  the pre-skip, reproduce the input from its first sample; ``flush`` pads with silence so
  the last real samples come out too.

Packets that go missing (suppressed silence between user segments) are simply skipped: the
decoder resynchronises on the next packet; the timestamps say where it belongs.
"""

from __future__ import annotations

import contextlib
from fractions import Fraction

import av
import numpy as np

from presence.audio.pcm import Float32
from presence.media import OPUS_FRAME_SAMPLES, OPUS_PRE_SKIP_SAMPLES, OPUS_SAMPLE_RATE
from presence.protocol.errors import InvalidPayload


class OpusError(InvalidPayload):
    """A payload that is not a decodable Opus packet; the session closes with 1007."""


class OpusDecoder:
    """One per stream. ``decode(packet)`` → float32 mono samples at 48 kHz, pre-skip removed."""

    def __init__(self, sample_rate: int = OPUS_SAMPLE_RATE) -> None:
        if sample_rate != OPUS_SAMPLE_RATE:
            raise ValueError(f"opus on the wire is {OPUS_SAMPLE_RATE} Hz, not {sample_rate}")
        self._codec = av.CodecContext.create("opus", "r")
        self._codec.sample_rate = OPUS_SAMPLE_RATE
        self._codec.layout = "mono"
        self._codec.open()
        self._to_skip = OPUS_PRE_SKIP_SAMPLES
        self.packets = 0

    def decode(self, packet: bytes) -> Float32:
        if not packet:
            raise OpusError("empty opus packet")
        try:
            frames = self._codec.decode(av.Packet(packet))
        except av.error.FFmpegError as exc:
            raise OpusError(f"undecodable opus packet: {exc}") from None
        parts = [np.asarray(f.to_ndarray(), dtype=np.float32).reshape(-1) for f in frames]
        samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        self.packets += 1
        if self._to_skip:
            skip = min(self._to_skip, len(samples))
            self._to_skip -= skip
            samples = samples[skip:]
        return samples


class OpusEncoder:
    """One per stream. ``encode(samples)`` takes 48 kHz float32 mono in any block size and
    returns the whole 20 ms packets now complete; ``flush()`` pads and returns the rest."""

    def __init__(self, sample_rate: int = OPUS_SAMPLE_RATE, bitrate: int = 32_000) -> None:
        if sample_rate != OPUS_SAMPLE_RATE:
            raise ValueError(f"opus on the wire is {OPUS_SAMPLE_RATE} Hz, not {sample_rate}")
        codec = av.CodecContext.create("libopus", "w")
        codec.sample_rate = OPUS_SAMPLE_RATE
        codec.layout = "mono"
        codec.format = "flt"
        codec.bit_rate = bitrate
        codec.time_base = Fraction(1, OPUS_SAMPLE_RATE)
        codec.options = {"application": "voip", "frame_duration": "20"}
        codec.open()
        self._codec = codec
        self._pending = np.zeros(0, dtype=np.float32)
        self._pts = 0
        self._fed = 0  # real samples given to encode()

    def encode(self, samples: Float32) -> list[bytes]:
        self._fed += len(samples)
        self._pending = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])
        out: list[bytes] = []
        while len(self._pending) >= OPUS_FRAME_SAMPLES:
            out += self._encode_frame(self._pending[:OPUS_FRAME_SAMPLES])
            self._pending = self._pending[OPUS_FRAME_SAMPLES:]
        return out

    def flush(self) -> list[bytes]:
        """End the stream: pad with silence until every real sample is in a packet past the pre-skip."""
        needed = self._fed + OPUS_PRE_SKIP_SAMPLES
        encoded = self._pts + len(self._pending)
        pad = max(0, needed - encoded)
        pad += (-(len(self._pending) + pad)) % OPUS_FRAME_SAMPLES
        out = self.encode(np.zeros(pad, dtype=np.float32)) if pad else []
        self._fed -= pad
        with contextlib.suppress(av.error.EOFError):  # already drained: nothing more to give
            out += [bytes(p) for p in self._codec.encode(None)]
        return out

    def _encode_frame(self, block: Float32) -> list[bytes]:
        frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = OPUS_SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = Fraction(1, OPUS_SAMPLE_RATE)
        self._pts += len(block)
        return [bytes(p) for p in self._codec.encode(frame)]
