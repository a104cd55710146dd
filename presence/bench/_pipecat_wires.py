"""The two wires ``presence bench pipecat`` drives: presence's protocol and Pipecat's raw PCM
messages, behind one small interface (send input audio, see reply audio arrive)."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import time
from typing import Protocol

import websockets
from websockets.asyncio.client import ClientConnection

from presence.audio.pcm import Float32, float_to_s16le
from presence.client.connection import PresenceClient

FRAME = 320  # 20 ms of input


class Wire(Protocol):
    """What the turn driver needs of a connection: send input audio, see reply audio arrive."""

    async def send(self, samples: Float32) -> None: ...

    def arrivals(self) -> list[tuple[float, int]]:
        """(monotonic arrival time, reply samples) of every reply audio message so far."""
        ...

    def turn_ends(self) -> list[int]:
        """Per answered turn, the input sample count at which the server ended the turn."""
        ...

    def sent_time_of(self, input_sample: int) -> float | None:
        """When the frame holding ``input_sample`` was sent."""
        ...

    async def close(self) -> None: ...


class PresenceWire:
    def __init__(self, client: PresenceClient) -> None:
        self.client = client

    @classmethod
    async def open(cls, port: int) -> PresenceWire:
        client = PresenceClient(f"ws://127.0.0.1:{port}/v1/session")
        await client.connect()
        return cls(client)

    async def send(self, samples: Float32) -> None:
        await self.client.send_audio(samples)

    def arrivals(self) -> list[tuple[float, int]]:
        return [(at, len(frame.data) // 2) for at, frame in self.client.received.audio if frame.data]

    def turn_ends(self) -> list[int]:
        metrics = self.client.received.events_of("metrics")
        return [int(body["turn_confirmed_sample"]) for body in metrics if body.get("turn_confirmed_sample") is not None]

    def sent_time_of(self, input_sample: int) -> float | None:
        return self.client.sent_time_of(input_sample)

    async def close(self) -> None:
        await self.client.close()


class PipecatWire:
    """Raw PCM both ways (s16le; 16 kHz in, 24 kHz out), as ``_pipecat_app`` serializes it."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._arrivals: list[tuple[float, int]] = []
        self._turn_ends: list[int] = []
        self._sent = 0
        self._sent_at: list[tuple[int, float]] = []  # (input samples after the frame, send time)
        self._reader = asyncio.create_task(self._read(), name="pipecat-wire-reader")

    @classmethod
    async def open(cls, port: int) -> PipecatWire:
        return cls(await websockets.connect(f"ws://127.0.0.1:{port}", open_timeout=10, compression=None))

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in self.ws:
                if isinstance(message, bytes) and message:
                    self._arrivals.append((time.monotonic(), len(message) // 2))
                elif isinstance(message, str):
                    note = json.loads(message)
                    if note.get("type") == "turn_end":
                        self._turn_ends.append(int(note["input_samples"]))

    async def send(self, samples: Float32) -> None:
        await self.ws.send(float_to_s16le(samples))
        self._sent += len(samples)
        self._sent_at.append((self._sent, time.monotonic()))

    def arrivals(self) -> list[tuple[float, int]]:
        return list(self._arrivals)

    def turn_ends(self) -> list[int]:
        return list(self._turn_ends)

    def sent_time_of(self, input_sample: int) -> float | None:
        index = bisect.bisect_right(self._sent_at, input_sample, key=lambda item: item[0])
        return self._sent_at[index][1] if index < len(self._sent_at) else None

    async def close(self) -> None:
        await self.ws.close()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self._reader, 5)
