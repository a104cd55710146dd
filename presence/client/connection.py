"""A Python client for the presence protocol over WebSocket: used by ``presence talk``,
the benchmarks and the tests. It streams user audio and collects everything the server says.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import websockets
from websockets.asyncio.client import ClientConnection

from presence.audio.pcm import float_to_s16le, s16le_to_float
from presence.client.auth import authorised_url
from presence.protocol.connection import Connection, Role
from presence.protocol.frames import (
    Animation,
    AudioIn,
    AudioOut,
    ClientHello,
    Event,
    Flags,
    Frame,
    Ping,
    Pong,
    ServerHello,
)
from presence.protocol.hello import OCULUS15, PCM_S16LE, WEIGHT_SETS, Agreement, parse_server_hello

INPUT_RATE = 16_000


def client_hello(
    input_rate: int = INPUT_RATE, output_rate: int = 24_000, weight_sets: tuple[str, ...] = (OCULUS15,)
) -> dict[str, Any]:
    return {
        "protocol": 1,
        "client": "presence-python/0.1",
        "audio_in": [{"codec": PCM_S16LE, "sample_rate": input_rate, "channels": 1}],
        "audio_out": [{"codec": PCM_S16LE, "sample_rate": output_rate, "channels": 1}],
        "weight_sets": list(weight_sets),
    }


@dataclass(slots=True)
class Received:
    """Everything the server sent, with the client's monotonic arrival time of each frame."""

    audio: list[tuple[float, AudioOut]] = field(default_factory=list)
    animation: list[tuple[float, Animation]] = field(default_factory=list)
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    pongs: list[tuple[float, Pong]] = field(default_factory=list)

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        return [body for _, body in self.events if body.get("type") == kind]


class PresenceClient:
    """One session. ``connect()``, then ``send_audio`` and read ``received`` as it fills."""

    def __init__(
        self,
        url: str,
        hello: dict[str, Any] | None = None,
        max_size: int | None = 2**20,
        token: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.ssl_context = ssl_context
        self.hello = hello or client_hello()
        self.max_size = max_size
        self.protocol = Connection(Role.CLIENT)
        self.received = Received()
        self.agreement: Agreement | None = None
        self.close_code: int | None = None
        self.close_reason: str = ""
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._input_sample = 0
        self._new_event = asyncio.Event()
        self.sent_at: list[tuple[int, float]] = []  # (input sample after the frame, send time)

    async def connect(self) -> Agreement:
        # No permessage-deflate: audio does not compress and the CPU cost lands on latency.
        url = await authorised_url(self.url, self.token, self.ssl_context)
        # ssl=None would refuse a wss:// URL: without a context of its own, the system's trust.
        if self.ssl_context is None:
            self._ws = await websockets.connect(url, max_size=self.max_size, open_timeout=10, compression=None)
        else:
            self._ws = await websockets.connect(
                url, max_size=self.max_size, open_timeout=10, compression=None, ssl=self.ssl_context
            )
        await self._ws.send(self.protocol.send(ClientHello(self.hello)))
        first: str | bytes = await asyncio.wait_for(self._ws.recv(), 10)
        if isinstance(first, str):
            raise ConnectionError("server sent a text message")
        frame = self.protocol.receive(first)
        if not isinstance(frame, ServerHello):
            raise ConnectionError(f"expected a server hello, got {type(frame).__name__}")
        self.agreement = parse_server_hello(frame.body)
        self._reader = asyncio.create_task(self._read(), name="presence-client-reader")
        return self.agreement

    async def send_audio(self, samples: np.ndarray, flags: Flags = Flags.NONE) -> None:
        """Float32 audio at the negotiated input rate; stamped with the running input position."""
        assert self._ws is not None and self.agreement is not None
        frame = AudioIn(float_to_s16le(samples), timestamp=self._input_sample, flags=flags)
        self._input_sample += len(samples)
        await self._ws.send(self.protocol.send(frame))
        self.sent_at.append((self._input_sample, time.monotonic()))

    def skip_audio(self, samples: int) -> None:
        """Silence suppression: advance the input timeline without sending."""
        self._input_sample += samples

    async def send_frame(self, frame: Frame) -> None:
        assert self._ws is not None
        await self._ws.send(self.protocol.send(frame))

    async def ping(self) -> None:
        await self.send_frame(Ping(timestamp=int(time.monotonic() * 1_000_000)))

    async def send_event(self, body: dict[str, Any]) -> None:
        await self.send_frame(Event(body))

    def sent_time_of(self, input_sample: int) -> float | None:
        """When the frame holding ``input_sample`` (at the input rate) was sent."""
        for end, at in self.sent_at:
            if end > input_sample:
                return at
        return None

    async def wait_for_event(self, predicate: Any, limit_s: float) -> dict[str, Any]:
        """Wait until an event satisfying ``predicate(body)`` has arrived; returns it."""
        deadline = time.monotonic() + limit_s
        seen = 0
        while True:
            for _, body in self.received.events[seen:]:
                if predicate(body):
                    return body
            seen = len(self.received.events)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._reader is None or self._reader.done():
                raise TimeoutError("the expected event did not arrive")
            self._new_event.clear()
            try:
                await asyncio.wait_for(self._new_event.wait(), remaining)
            except TimeoutError:
                continue

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for message in self._ws:
                if isinstance(message, str):
                    raise ConnectionError("server sent a text message")
                frame = self.protocol.receive(message)
                now = time.monotonic()
                match frame:
                    case AudioOut():
                        self.received.audio.append((now, frame))
                    case Animation():
                        self.received.animation.append((now, frame))
                    case Event():
                        self.received.events.append((now, frame.body))
                    case Pong():
                        self.received.pongs.append((now, frame))
                    case Ping():
                        await self._ws.send(self.protocol.send(Pong(frame.timestamp, int(now * 1e6))))
                self._new_event.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            if self._ws.close_code is not None:
                self.close_code = self._ws.close_code
                self.close_reason = self._ws.close_reason or ""
            self._new_event.set()

    async def wait_closed(self, limit_s: float = 10) -> int | None:
        if self._reader is not None:
            await asyncio.wait_for(asyncio.shield(self._reader), limit_s)
        return self.close_code

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, 5)
            except (TimeoutError, asyncio.CancelledError):
                self._reader.cancel()


def render_timeline(received: Received, sample_rate: int) -> tuple[np.ndarray, int]:
    """The reply audio as heard: every chunk at its timeline position, cut at interruptions.

    Returns (samples, timeline sample of samples[0])."""
    cuts = {body["turn_id"]: body["cut_at"] for body in received.events_of("interrupt")}
    chunks = [frame for _, frame in received.audio if frame.data]
    if not chunks:
        return np.zeros(0, dtype=np.float32), 0
    start = min(f.timestamp for f in chunks)
    end = max(f.timestamp + len(f.data) // 2 for f in chunks)
    out = np.zeros(end - start, dtype=np.float32)
    segment_cut: int | None = None
    for frame in sorted(chunks, key=lambda f: f.timestamp):
        if frame.flags & Flags.SEGMENT_START:
            segment_cut = None
            for cut in cuts.values():
                if cut >= frame.timestamp:
                    segment_cut = cut if segment_cut is None else min(segment_cut, cut)
        samples = s16le_to_float(frame.data)
        if segment_cut is not None:
            samples = samples[: max(0, segment_cut - frame.timestamp)]
        out[frame.timestamp - start : frame.timestamp - start + len(samples)] = samples
    return out, start


def animation_rows(received: Received) -> list[dict[str, Any]]:
    """One dict per animation frame: timeline sample and named weights in [0, 1]."""
    rows: list[dict[str, Any]] = []
    names_by_id = {set_id: names for set_id, names in WEIGHT_SETS.values()}
    for _, frame in received.animation:
        names = names_by_id.get(frame.weight_set, ())
        per = frame.weights_per_frame
        for i in range(frame.frame_count):
            values = frame.weights[i * per : (i + 1) * per]
            rows.append(
                {
                    "t_samples": frame.timestamp + i * frame.step_samples,
                    "weights": {name: round(v / 255, 4) for name, v in zip(names, values, strict=False)},
                }
            )
    return rows
