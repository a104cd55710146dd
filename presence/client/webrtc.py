"""A Python WebRTC peer for presence (tests and benchmarks): microphone as RTP Opus, reply
heard as RTP Opus, events and animation on the two data channels (docs/protocol.md, "WebRTC").

``connect()`` signals over ``POST /v1/webrtc``; ``say(samples)`` queues microphone audio,
which ``MicTrack`` streams in real time (silence between utterances, as a live microphone
would); ``received`` fills as the server speaks.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from presence.audio.pcm import float_to_s16le
from presence.client.auth import _fetch_token, with_token
from presence.client.connection import client_hello
from presence.protocol.connection import Connection, Role
from presence.protocol.frames import Animation, ClientHello, Event, Frame, encode
from presence.protocol.hello import Agreement, parse_server_hello

RATE = 48_000
FRAME = 960  # 20 ms


class MicTrack(MediaStreamTrack):
    """A live microphone: 20 ms frames in real time, queued audio first, else silence."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pending = np.zeros(0, dtype=np.float32)
        self._start: float | None = None
        self._sent = 0
        self.spoken_until: float | None = None  # when the last queued sample goes out

    def say(self, samples: np.ndarray) -> None:
        """Queue 48 kHz float samples after whatever is still queued."""
        self._pending = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])

    @property
    def queued_s(self) -> float:
        return len(self._pending) / RATE

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        due = self._start + self._sent * FRAME / RATE
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        chunk = self._pending[:FRAME]
        self._pending = self._pending[FRAME:]
        if len(chunk) < FRAME:
            chunk = np.concatenate([chunk, np.zeros(FRAME - len(chunk), dtype=np.float32)])
        frame = av.AudioFrame.from_ndarray(
            np.frombuffer(float_to_s16le(chunk), dtype="<i2").reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = RATE
        frame.pts = self._sent * FRAME
        frame.time_base = fractions.Fraction(1, RATE)
        self._sent += 1
        return frame


@dataclass(slots=True)
class Heard:
    """What arrived, stamped with this process's monotonic clock."""

    audio: list[tuple[float, int, float]] = field(default_factory=list)  # (when, pts, rms)
    animation: list[tuple[float, Animation]] = field(default_factory=list)
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        return [body for _, body in self.events if body.get("type") == kind]

    def loud_since(self, since: float, threshold: float = 0.01) -> list[float]:
        return [when for when, _, rms in self.audio if when >= since and rms > threshold]


class WebRtcClient:
    def __init__(self, http_base: str, hello: dict[str, Any] | None = None, token: str | None = None) -> None:
        self.http_base = http_base.rstrip("/")
        self.hello = hello or client_hello()
        self.token = token
        self.pc = RTCPeerConnection()
        self.mic = MicTrack()
        self.protocol = Connection(Role.CLIENT)
        self.heard = Heard()
        self.agreement: Agreement | None = None
        self.closed_with: dict[str, Any] | None = None
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.events = self.pc.createDataChannel("events", negotiated=True, id=0)
        self.animation = self.pc.createDataChannel("animation", ordered=False, maxRetransmits=0, negotiated=True, id=1)
        self.events.on("message", self._on_message)
        self.animation.on("message", self._on_message)
        self.pc.on("track", self._on_track)
        self.pc.addTrack(self.mic)

    async def connect(self) -> Agreement:
        # The hello goes in the signalling request; the connection's table still wants to see
        # the server's hello first, as it arrives on the events channel.
        self.protocol.send(ClientHello(self.hello))
        await self.pc.setLocalDescription(await self.pc.createOffer())
        body = {"type": "offer", "sdp": self.pc.localDescription.sdp, "hello": self.hello}
        status, answer = await asyncio.to_thread(self._post, body)
        if status != 201:
            raise ConnectionError(f"signalling refused: HTTP {status} {answer}")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        self.agreement = parse_server_hello(answer["hello"])
        return self.agreement

    def _post(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        url = f"{self.http_base}/v1/webrtc"
        token = self.token or _fetch_token(f"{self.http_base}/v1/token", None)
        if token:
            url = with_token(url, token)
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def say(self, samples: np.ndarray) -> None:
        self.mic.say(samples)

    def send_event(self, body: dict[str, Any]) -> None:
        self.events.send(self.protocol.send(Event(body)))

    def send_frame(self, frame: Frame) -> None:
        """Any frame on the events channel, encoded without the client's direction checks."""
        self.events.send(encode(frame))

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def wait_for_event(self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def seen() -> bool:
            found[:] = [body for _, body in self.heard.events if predicate(body)]
            return bool(found)

        await self.wait_for(seen, timeout_s)
        return found[0]

    def _on_message(self, message: bytes | str) -> None:
        if isinstance(message, str):
            return
        frame = self.protocol.receive(message)
        now = time.monotonic()
        if isinstance(frame, Event):
            self.heard.events.append((now, frame.body))
            if frame.body.get("type") == "close":
                self.closed_with = frame.body
        elif isinstance(frame, Animation):
            self.heard.animation.append((now, frame))
        self._changed.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        task = asyncio.ensure_future(self._listen(track))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _listen(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(frame, av.AudioFrame)
            pcm = frame.to_ndarray().astype(np.float32) / 32768
            rms = float(np.sqrt(np.mean(pcm**2))) if pcm.size else 0.0
            self.heard.audio.append((time.monotonic(), int(frame.pts or 0), rms))
            self._changed.set()

    async def close(self) -> None:
        self.mic.stop()
        await self.pc.close()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
