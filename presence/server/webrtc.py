"""The WebRTC adapter: one RTCPeerConnection carrying one session, beside the WebSocket one.

The session is the same object either way: it eats protocol frames and emits protocol frames
(docs/protocol.md, "WebRTC"). This module only moves them:

- microphone: RTP Opus from the browser, decoded by aiortc, → ``AudioIn`` frames of 48 kHz
  mono PCM stamped with the RTP timestamp (gaps left by DTX are the session's suppressed silence);
- reply audio: the session's ``AudioOut`` Opus packets go onto RTP unchanged (no re-encoding),
  released in real time by ``Pacer`` so the browser's jitter buffer sees a live stream; an
  ``interrupt`` event flushes the packets not yet released;
- events, pings and pongs: protocol frames on the ``events`` data channel (reliable, ordered);
- animation: protocol frames on the ``animation`` channel (unordered, no retransmission: a
  late frame is useless, the next one supersedes it).

Signalling is one HTTP exchange (offer and client hello in, answer and server hello out); the
app does the authentication and admission before it gets here.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdatachannel import RTCDataChannel

from presence.media import OPUS_PRE_SKIP_SAMPLES as PRE_SKIP_SAMPLES
from presence.media import OPUS_SAMPLE_RATE
from presence.protocol.connection import Connection, Role
from presence.protocol.errors import CloseCode, InvalidPayload, ProtocolError, UnexpectedFrame
from presence.protocol.frames import (
    MAX_FRAME_BYTES,
    Animation,
    AudioIn,
    AudioOut,
    ClientHello,
    Event,
    Flags,
    Frame,
    ServerHello,
    encode,
)
from presence.protocol.hello import OPUS, PCM_S16LE, Agreement, ServerCapabilities, negotiate
from presence.protocol.hello import parse_client_hello as parse_hello
from presence.server.metrics import Metrics, close_code_label
from presence.session.session import Session

log = logging.getLogger(__name__)

RATE: Final = OPUS_SAMPLE_RATE  # RTP Opus always runs at 48 kHz
TIME_BASE: Final = fractions.Fraction(1, RATE)
FRAME_SAMPLES: Final = 960  # 20 ms Opus packets
OPUS_SILENCE: Final = b"\xf8\xff\xfe"  # one 20 ms CELT frame of digital silence (TOC 0xF8, RFC 6716)
MAX_OFFER_BYTES: Final = 64 * 1024
EVENTS_CHANNEL: Final = ("events", 0)  # (label, negotiated id): the page opens the same two
ANIMATION_CHANNEL: Final = ("animation", 1)
#: What a WebRTC session's media are, whatever the hello offered: the RTP stream is Opus both
#: ways; aiortc decodes the microphone, so the session sees 48 kHz PCM.
WEBRTC_AUDIO_IN: Final = {"codec": PCM_S16LE, "sample_rate": RATE, "channels": 1}
WEBRTC_AUDIO_OUT: Final = {"codec": OPUS, "sample_rate": RATE, "channels": 1}

SessionFactory = Callable[[Agreement, Callable[[Frame], None]], Awaitable[Session]]


@dataclass(frozen=True, slots=True)
class WebRtcConfig:
    send_queue_frames: int = 512  # reply packets or events waiting; past it the session is closed
    connect_timeout_s: float = 10.0  # the answer is out: ICE and DTLS must finish by then
    idle_timeout_s: float = 120.0  # nothing (RTP or data) received for this long ends the session
    max_buffered_bytes: int = 1 << 20  # unsent bytes on the events channel: past it, a slow consumer
    close_grace_s: float = 0.5  # time the farewell event gets to leave before the peer closes


class Pacer:
    """When to release a packet stamped ``pts`` (48 kHz): on the timeline's own schedule.

    Pure: time is an argument. The first packet anchors timeline to wall clock; later ones are
    due at the anchor plus their distance on the timeline. A packet late by up to ``slack_s``
    (the event loop was busy) goes at once, so the stream catches up and the browser's jitter
    buffer absorbs the burst; one later than that (the engine stalled) re-anchors there
    instead, since a longer burst would only be played late or dropped.
    """

    def __init__(self, rate: int = RATE, slack_s: float = 0.1) -> None:
        self.rate = rate
        self.slack_s = slack_s
        self.anchor: tuple[int, float] | None = None

    def due(self, pts: int, now_s: float) -> float:
        if self.anchor is None:
            self.anchor = (pts, now_s)
            return now_s
        at = self.anchor[1] + (pts - self.anchor[0]) / self.rate
        if at < now_s - self.slack_s:
            self.anchor = (pts, now_s)
            return now_s
        return at


class ReplyTrack(MediaStreamTrack):
    """The reply's Opus packets as an aiortc audio track of pre-encoded packets.

    ``pts`` is the output-timeline sample the packet's decoded audio starts at (the session's
    Opus stamps, docs/protocol.md), so RTP timestamp − origin = timeline sample heard.
    """

    kind = "audio"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.clock = clock
        self.pacer = Pacer()
        self._queue: deque[tuple[int, bytes, bool]] = deque()  # (pts, payload, last of its reply)
        self._replying = False  # a reply has started and its last packet has not gone out
        self._changed = asyncio.Event()
        self.released: list[tuple[int, float]] = []  # (pts, when): reply audio sent to RTP, for tests/bench
        self.silence_sent = 0
        self.flushed = 0
        self.last_sent_pts: int | None = None  # the packet the RTP sender has (or is) sending
        self._shift = 0  # added to this reply's stamps so RTP timestamps never run backwards
        self.on_sent: Callable[[int, int | None], None] | None = None  # (pts, the previous packet's pts)

    def __len__(self) -> int:
        return len(self._queue)

    def push(self, frame: AudioOut) -> None:
        if not frame.data:  # an empty reply's end-of-segment marker carries no sound
            if self._queue:  # it still ends the reply whose packets are queued
                pts, payload, _ = self._queue[-1]
                self._queue[-1] = (pts, payload, True)
            else:
                self._replying = False
            return
        # Packet 0 of a reply is stamped at the reply's start; its audio (after the pre-skip)
        # starts PRE_SKIP earlier on the packet grid, as every later packet's stamp says.
        pts = frame.timestamp - PRE_SKIP_SAMPLES if frame.flags & Flags.SEGMENT_START else frame.timestamp
        if frame.flags & Flags.SEGMENT_START:
            self._replying = True
            # Silence filled the pause up to about now: a reply placed a hair earlier moves on
            # by that much (a few ms at most) rather than send timestamps backwards.
            last = self._queue[-1][0] if self._queue else self.last_sent_pts
            self._shift = 0 if last is None else max(0, last + FRAME_SAMPLES - pts)
        self._queue.append((max(pts + self._shift, 0), frame.data, bool(frame.flags & Flags.SEGMENT_END)))
        self._changed.set()

    @property
    def sent_until(self) -> int:
        """Timeline sample just past the last reply packet released to RTP (0 before the first)."""
        return self.released[-1][0] + FRAME_SAMPLES if self.released else 0

    def flush(self, from_pts: int) -> int:
        """Drop queued packets whose audio starts at or after ``from_pts`` (a barge-in's cut)."""
        dropped = 0
        while self._queue and self._queue[-1][0] >= from_pts:
            self._queue.pop()
            dropped += 1
        self.flushed += dropped
        if not self._queue:
            self._replying = False
        self._changed.set()
        return dropped

    def stop(self) -> None:
        super().stop()
        self._changed.set()

    async def recv(self) -> Any:
        """The next packet when it is due: reply audio, or between replies a silence packet.

        The stream never pauses once it has started, as a microphone's does not: Chromium's
        NetEQ, given seconds without packets and then a timestamp jump, played each later reply
        later (seconds, growing turn by turn); with silence in the pauses it plays on time.
        """
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            if not self._queue and (self.last_sent_pts is None or self._replying):
                # Nothing yet, or the engine is behind within a reply: wait (silence here would
                # take the timestamps the reply's next packets need).
                self._changed.clear()
                await self._changed.wait()
                continue
            if self._queue:
                pts, payload, last = self._queue[0]
            else:
                assert self.last_sent_pts is not None
                pts, payload = self.last_sent_pts + FRAME_SAMPLES, OPUS_SILENCE
            now = self.clock()
            wait = self.pacer.due(pts, now) - now
            if wait > 0:
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):  # not wait_for: 3.11's can swallow a cancel
                        await self._changed.wait()
                continue  # re-check: a reply may have come, or the queue been flushed
            if self._queue:
                self._queue.popleft()
                self.released.append((pts, now))
                if last:
                    self._replying = False
            else:
                self.silence_sent += 1
            previous, self.last_sent_pts = self.last_sent_pts, pts
            if self.on_sent is not None:
                self.on_sent(pts, previous)
            packet = av.Packet(payload)
            packet.pts = pts
            packet.time_base = TIME_BASE
            return packet


class ImmediateFrames:
    """Each microphone packet to the decoder as it arrives, in place of aiortc's audio jitter buffer.

    aiortc's holds four packets back (80 ms) and, when DTX pauses the stream, the last words of
    an utterance until the next packet comes (up to 400 ms): that is end-of-turn latency. The
    session needs no jitter buffer for the microphone: it orders audio by timestamp, fills gaps
    with silence and drops what comes too late (presence/session/inbound.py).
    """

    capacity = 16

    def add(self, packet: Any) -> tuple[bool, JitterFrame]:
        return False, JitterFrame(data=packet._data, timestamp=packet.timestamp)


def mono_s16le(frame: Any) -> bytes:
    """aiortc's decoded frame (packed s16, usually stereo) → mono s16le bytes (left channel)."""
    samples = frame.to_ndarray()
    channels = len(frame.layout.channels)
    return bytes(np.ascontiguousarray(samples.reshape(-1)[::channels], dtype="<i2").tobytes())


def webrtc_agreement(hello: Any, caps: ServerCapabilities, session_id: str, engine: str) -> Agreement:
    """Negotiate as the WebSocket does, with the media formats RTP fixes (Opus out, PCM in)."""
    if not isinstance(hello, dict):
        raise InvalidPayload("'hello' must be the client hello object of docs/protocol.md")
    offer = parse_hello({**hello, "audio_in": [WEBRTC_AUDIO_IN], "audio_out": [WEBRTC_AUDIO_OUT]})
    return negotiate(offer, caps, session_id, engine)


class WebRtcPeer:
    """One peer connection carrying one session; owns its tasks and ends them all."""

    def __init__(
        self,
        caps: ServerCapabilities,
        engine_name: str,
        make_session: SessionFactory,
        metrics: Metrics,
        config: WebRtcConfig,
        impair: Callable[[RTCPeerConnection], None] | None = None,
    ) -> None:
        self.impair = impair  # benchmarks: an emulated network on this peer's UDP sockets
        self.caps = caps
        self.engine_name = engine_name
        self.make_session = make_session
        self.metrics = metrics
        self.config = config
        self.session_id = uuid.uuid4().hex[:16]
        self.session: Session | None = None
        self.connection = Connection(Role.SERVER)
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.track = ReplyTrack()
        self.events: RTCDataChannel = self.pc.createDataChannel(
            EVENTS_CHANNEL[0], negotiated=True, id=EVENTS_CHANNEL[1]
        )
        self.animation: RTCDataChannel = self.pc.createDataChannel(
            ANIMATION_CHANNEL[0], ordered=False, maxRetransmits=0, negotiated=True, id=ANIMATION_CHANNEL[1]
        )
        self._pending_events: deque[bytes] = deque()
        self._close_request: tuple[int, str] | None = None
        self._closing = asyncio.Event()
        self._activity = asyncio.Event()
        self._connected = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._rtp_origin_sent = False
        self.close_code: int | None = None
        self.finished = asyncio.Event()
        self.animation_dropped = 0
        self.events.on("open", self._flush_events)
        self.events.on("message", self._on_message)
        self.events.on("close", lambda: self.request_close(CloseCode.GOING_AWAY, "events channel closed"))
        self.pc.on("connectionstatechange", self._on_state)
        self.pc.on("track", self._on_track)
        self.track.on_sent = self._on_sent

    # ------------------------------------------------------------------ signalling

    async def open(self, offer_sdp: str, hello: Any) -> dict[str, Any]:
        """Answer the offer with a session behind it: ``{"type", "sdp", "hello"}``.

        Raises ``ProtocolError`` for a bad hello or an offer without Opus audio; the engine
        session opens before the answer, as it opens before the WebSocket's server hello.
        """
        agreement = webrtc_agreement(hello, self.caps, self.session_id, self.engine_name)
        self.connection.receive(encode(ClientHello(hello)))  # opens the connection's table
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        except (ValueError, TypeError) as exc:
            raise InvalidPayload(f"not a usable SDP offer: {exc}"[:120]) from None
        audio = [t for t in self.pc.getTransceivers() if t.kind == "audio"]
        if len(audio) != 1:
            raise InvalidPayload("the offer must carry exactly one audio section (the microphone)")
        # Private in aiortc 1.16 (no option for it): checked by tests/server/test_webrtc.py.
        audio[0].receiver._RTCRtpReceiver__jitter_buffer = ImmediateFrames()  # type: ignore[attr-defined]
        opus = [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType.lower() == "audio/opus"]
        audio[0].setCodecPreferences(opus)
        self.pc.addTrack(self.track)
        self.session = await self.make_session(agreement, self.send)
        self.metrics.sessions_active.inc()
        self.send(ServerHello(agreement.to_json()))
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        if self.impair is not None:
            self.impair(self.pc)
        return {"type": "answer", "sdp": self.pc.localDescription.sdp, "hello": agreement.to_json()}

    # ------------------------------------------------------------------ session → peer

    def send(self, frame: Frame) -> None:
        """The session's send function: never blocks, never grows past its bounds."""
        if self._close_request is not None:
            return
        match frame:
            case AudioOut():
                if len(self.track) >= self.config.send_queue_frames:
                    self.request_close(CloseCode.SLOW_CONSUMER, "reply audio queue overflowed")
                    return
                self.track.push(frame)
            case Animation():
                data = self.connection.send(frame)
                if (
                    self.animation.readyState == "open"
                    and self.animation.bufferedAmount < self.config.max_buffered_bytes
                ):
                    self.animation.send(data)
                    self._count_out(frame, data)
                else:
                    self.animation_dropped += 1  # unreliable by design: the next frame supersedes it
            case _:
                if isinstance(frame, Event) and frame.body.get("type") == "interrupt":
                    # All of it, not only what follows `cut_at`: the page mutes now, and what
                    # was due before the cut is already late.
                    self.track.flush(0)
                    # What the page's jitter buffer may still hold ends here: it stays muted
                    # until audio from at least this sample plays (the next reply).
                    frame = Event({**frame.body, "sent_until": self.track.sent_until})
                self._send_event_bytes(self.connection.send(frame))
                self._count_out(frame, b"")

    def _send_event_bytes(self, data: bytes) -> None:
        if self.events.readyState != "open":
            if len(self._pending_events) >= self.config.send_queue_frames:
                self.request_close(CloseCode.SLOW_CONSUMER, "events queue overflowed before the channel opened")
                return
            self._pending_events.append(data)
            return
        if self.events.bufferedAmount > self.config.max_buffered_bytes:
            self.request_close(CloseCode.SLOW_CONSUMER, "client is not reading its events channel")
            return
        self.events.send(data)
        self.metrics.bytes_out.inc(len(data))

    def _flush_events(self) -> None:
        while self._pending_events and self.events.readyState == "open":
            data = self._pending_events.popleft()
            self.events.send(data)
            self.metrics.bytes_out.inc(len(data))

    def _count_out(self, frame: Frame, data: bytes) -> None:
        self.metrics.frames_out.labels(type=type(frame).__name__.lower()).inc()
        if data:
            self.metrics.bytes_out.inc(len(data))

    def _on_sent(self, pts: int, previous: int | None) -> None:
        """Tell the page how RTP timestamps map to the timeline, once a packet has gone out.

        aiortc picks a random RTP timestamp origin and does not expose it; the sender keeps the
        last sent timestamp for its RTCP sender reports, and the packet handed out before this
        one (``previous``) has gone out by the time the sender asks for the next.
        """
        self.metrics.frames_out.labels(type="audioout").inc()
        if self._rtp_origin_sent or previous is None:
            return
        sender = next((s for s in self.pc.getSenders() if s.track is self.track), None)
        last_rtp = getattr(sender, "_RTCRtpSender__rtp_timestamp", None)
        if not isinstance(last_rtp, int):
            return
        self._rtp_origin_sent = True
        origin = (last_rtp - previous) % 2**32
        self.send(Event({"type": "rtp_clock", "origin": origin, "rate": RATE}))

    # ------------------------------------------------------------------ peer → session

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._spawn(self._read_audio(track), "audio-in")

    async def _read_audio(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self._activity.set()
            if self.session is None or self._close_request is not None:
                continue
            data = mono_s16le(frame)
            self.metrics.bytes_in.inc(len(data))
            self.metrics.frames_in.labels(type="audioin").inc()
            try:
                await self.session.handle(AudioIn(data, timestamp=int(frame.pts or 0)))
            except ProtocolError as exc:
                self.request_close(exc.close_code, exc.reason)
                return

    def _on_message(self, message: bytes | str) -> None:
        self._activity.set()
        if isinstance(message, str):
            self.request_close(CloseCode.UNEXPECTED_FRAME, "text messages are not part of the protocol")
            return
        if len(message) > MAX_FRAME_BYTES:
            self.request_close(CloseCode.MESSAGE_TOO_BIG, "data channel message larger than one frame")
            return
        self.metrics.bytes_in.inc(len(message))
        try:
            frame = self.connection.receive(message)
            if isinstance(frame, AudioIn):
                raise UnexpectedFrame("AUDIO_IN goes over RTP on a WebRTC session, not the data channel")
        except ProtocolError as exc:
            self.request_close(exc.close_code, exc.reason)
            return
        if frame is None or self.session is None:
            return
        self.metrics.frames_in.labels(type=type(frame).__name__.lower()).inc()
        self._spawn(self.session.handle(frame), "event-in")

    def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            self._connected.set()
        elif state in ("failed", "closed"):
            self.request_close(CloseCode.GOING_AWAY, f"peer connection {state}")

    # ------------------------------------------------------------------ lifecycle

    def request_close(self, code: int, reason: str) -> None:
        """End the session (from any task); the first request wins."""
        if self._close_request is None:
            self._close_request = (int(code), reason)
            self._closing.set()

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(f"webrtc-{self.session_id}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            failure = task.exception()
            if isinstance(failure, ProtocolError):
                self.request_close(failure.close_code, failure.reason)
            else:
                log.error("session %s failed", self.session_id, exc_info=failure)
                self.request_close(CloseCode.INTERNAL_ERROR, "internal error")

    async def run(self) -> None:
        """Serve until the peer goes, the session fails, or a bound is hit; then end everything."""
        assert self.session is not None
        self.session.start()
        self._spawn(self._watch_connect(), "connect")
        self._spawn(self._watch_idle(), "idle")
        self._spawn(self._watch_session(), "watch")
        try:
            await self._closing.wait()
        finally:
            await self._shutdown()

    async def _watch_connect(self) -> None:
        try:
            async with asyncio.timeout(self.config.connect_timeout_s):
                await self._connected.wait()
        except TimeoutError:
            self.request_close(CloseCode.PROTOCOL_ERROR, "the peer connection did not connect in time")

    async def _watch_idle(self) -> None:
        while True:
            self._activity.clear()
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the cancel that
                # shutdown sends when activity arrives at the same moment, and loop forever.
                async with asyncio.timeout(self.config.idle_timeout_s):
                    await self._activity.wait()
            except TimeoutError:
                self.request_close(CloseCode.IDLE_TIMEOUT, "nothing received within the idle timeout")
                return

    async def _watch_session(self) -> None:
        assert self.session is not None
        await self.session.failed.wait()
        self.request_close(CloseCode.INTERNAL_ERROR, f"engine failed: {self.session.fatal_error}"[:120])

    async def _shutdown(self) -> None:
        code, reason = self._close_request or (int(CloseCode.NORMAL), "")
        self.close_code = code
        try:
            if self.events.readyState == "open":
                # The WebSocket's close frame, as a last event: the page shows the same reasons.
                body = {"type": "close", "code": code, "reason": reason}
                with contextlib.suppress(Exception):
                    self.events.send(self.connection.send(Event(body)))
                    await self._events_drained()
            for task in list(self._tasks):
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.track.stop()
            if self.session is not None:
                try:
                    await self.session.close()
                except Exception:
                    log.exception("session %s: error while closing", self.session_id)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.config.close_grace_s * 4):
                    await self.pc.close()
        finally:
            if self.session is not None:
                self.metrics.sessions_active.dec()
                self.metrics.sessions_closed.labels(code=close_code_label(code)).inc()
            self.finished.set()

    async def _events_drained(self) -> None:
        if self.events.bufferedAmount == 0:
            return
        drained = asyncio.Event()
        self.events.bufferedAmountLowThreshold = 0
        self.events.on("bufferedamountlow", drained.set)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.close_grace_s):
                await drained.wait()

    async def abort(self) -> None:
        """Signalling failed after the peer was built: release it without a session to serve."""
        self.request_close(CloseCode.INTERNAL_ERROR, "signalling failed")
        await self._shutdown()


def offer_from_body(body: Any) -> tuple[str, Any]:
    """The offer's SDP and the client hello from the signalling request's JSON body."""
    if not isinstance(body, dict) or body.get("type") != "offer" or not isinstance(body.get("sdp"), str):
        raise InvalidPayload('body must be {"type": "offer", "sdp": "...", "hello": {...}}')
    return body["sdp"], body.get("hello")


__all__ = [
    "ANIMATION_CHANNEL",
    "EVENTS_CHANNEL",
    "Pacer",
    "ReplyTrack",
    "WebRtcConfig",
    "WebRtcPeer",
    "offer_from_body",
    "webrtc_agreement",
]
