"""The WebSocket adapter: bytes in and out of one connection, around the sans-I/O codec.

It does the I/O the protocol core will not: reads messages, enforces the hello deadline and
the idle timeout, writes frames from a bounded queue (a slow reader overflows it and is
closed with 4008 rather than growing memory), and maps every ``ProtocolError`` to its
documented close code. It wires; the session decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from presence.protocol.connection import Connection, Role
from presence.protocol.errors import CloseCode, ProtocolError, ServerBusy, UnexpectedFrame
from presence.protocol.frames import ClientHello, Frame, FrameType, ServerHello
from presence.protocol.hello import Agreement, ServerCapabilities, negotiate, parse_client_hello
from presence.server.metrics import Metrics, close_code_label
from presence.session.session import Session

log = logging.getLogger(__name__)

SessionFactory = Callable[[Agreement, Callable[[Frame], None]], Awaitable[Session]]
Admit = Callable[[], str | None]  # the hello arrived: None if a session may open, else why not


@dataclass(frozen=True, slots=True)
class TransportConfig:
    send_queue_frames: int = 512
    hello_timeout_s: float = 10.0
    idle_timeout_s: float = 120.0
    close_timeout_s: float = 2.0  # a peer that reads nothing cannot take our close frame


class Transport:
    """One WebSocket connection carrying one session."""

    def __init__(
        self,
        websocket: WebSocket,
        caps: ServerCapabilities,
        engine_name: str,
        make_session: SessionFactory,
        metrics: Metrics,
        config: TransportConfig,
        admit: Admit = lambda: None,
    ) -> None:
        self.websocket = websocket
        self.admit = admit
        self.caps = caps
        self.engine_name = engine_name
        self.make_session = make_session
        self.metrics = metrics
        self.config = config
        self.connection = Connection(Role.SERVER)
        self.session_id = uuid.uuid4().hex[:16]
        self.session: Session | None = None
        self._queue: deque[Frame] = deque()
        self._queue_ready = asyncio.Event()
        self._close_request: tuple[int, str] | None = None
        self._closing = asyncio.Event()
        self.peak_queue = 0
        self.close_code: int | None = None
        self.finished = asyncio.Event()

    # The session's send function: never blocks, never grows past the bound.
    def enqueue(self, frame: Frame) -> None:
        if self._close_request is not None:
            return
        if len(self._queue) >= self.config.send_queue_frames:
            self.request_close(CloseCode.SLOW_CONSUMER, "client is not reading; send queue overflowed")
            return
        self._queue.append(frame)
        self.peak_queue = max(self.peak_queue, len(self._queue))
        self._queue_ready.set()

    def request_close(self, code: int, reason: str) -> None:
        """Ask the connection to close (from any task); the first request wins."""
        if self._close_request is None:
            self._close_request = (code, reason)
            self._closing.set()

    @property
    def queued_frames(self) -> int:
        return len(self._queue)

    async def run(self) -> None:
        await self.websocket.accept()
        self.metrics.sessions_active.inc()
        code, reason = int(CloseCode.NORMAL), ""
        try:
            code, reason = await self._serve()
        finally:
            self.metrics.sessions_active.dec()
            self.metrics.sessions_closed.labels(code=close_code_label(code)).inc()
            if self.session is not None:
                try:
                    await self.session.close()
                except Exception:  # the close frame and `finished` must follow regardless
                    log.exception("session %s: error while closing", self.session_id)
            self.close_code = int(code)
            if code not in (CloseCode.SLOW_CONSUMER,) and self.websocket.application_state is WebSocketState.CONNECTED:
                # Let what is already queued (an error event, the end of a reply) reach the client.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._drain(), 0.5)
            if self.websocket.application_state is WebSocketState.CONNECTED:
                # The peer may be gone, or (a slow consumer) read nothing, so that the close
                # frame waits forever for room in the socket: give up after a while, so the
                # session is released either way.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.websocket.close(int(code), reason), self.config.close_timeout_s)
            self.finished.set()

    async def _serve(self) -> tuple[int, str]:
        try:
            await self._hello()
        except ProtocolError as exc:
            return exc.close_code, exc.reason
        except TimeoutError:
            return CloseCode.PROTOCOL_ERROR, "no hello within the deadline"
        except WebSocketDisconnect as exc:
            return exc.code, ""
        except Exception:
            log.exception("session %s: could not open the engine session", self.session_id)
            return CloseCode.INTERNAL_ERROR, "the engine could not open a session"
        assert self.session is not None
        self.session.start()
        tasks = {
            asyncio.create_task(self._reader(), name=f"ws-{self.session_id}-reader"),
            asyncio.create_task(self._writer(), name=f"ws-{self.session_id}-writer"),
            asyncio.create_task(self._closing.wait(), name=f"ws-{self.session_id}-closing"),
            asyncio.create_task(self._watch_session(), name=f"ws-{self.session_id}-watch"),
        }
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for task in done:
            if task.cancelled():
                continue
            failure = task.exception()
            if isinstance(failure, ProtocolError):
                return failure.close_code, failure.reason
            if isinstance(failure, WebSocketDisconnect):
                return failure.code, ""
            if failure is not None:
                log.error("session %s failed", self.session_id, exc_info=failure)
                return CloseCode.INTERNAL_ERROR, "internal error"
        if self._close_request is not None:
            return self._close_request
        return CloseCode.NORMAL, ""

    async def _receive(self, limit_s: float) -> bytes:
        message = await asyncio.wait_for(self.websocket.receive(), limit_s)
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", CloseCode.NORMAL))
        data = message.get("bytes")
        if data is None:
            raise UnexpectedFrame("text messages are not part of the protocol; send binary frames")
        self.metrics.bytes_in.inc(len(data))
        return bytes(data)

    async def _hello(self) -> None:
        frame = self.connection.receive(await self._receive(self.config.hello_timeout_s))
        assert isinstance(frame, ClientHello)  # the connection's table allows nothing else first
        self.metrics.frames_in.labels(type=FrameType.CLIENT_HELLO.name.lower()).inc()
        agreement = negotiate(parse_client_hello(frame.body), self.caps, self.session_id, self.engine_name)
        refusal = self.admit()
        if refusal is not None:
            raise ServerBusy(refusal)
        # The engine session opens before the hello is answered: a client that got a
        # ServerHello has a working session, and a failure closes with 1011 and a reason.
        self.session = await self.make_session(agreement, self.enqueue)
        self.enqueue(ServerHello(agreement.to_json()))

    async def _reader(self) -> None:
        assert self.session is not None
        while True:
            try:
                data = await self._receive(self.config.idle_timeout_s)
            except TimeoutError:
                self.request_close(CloseCode.IDLE_TIMEOUT, "nothing received within the idle timeout")
                return
            frame = self.connection.receive(data)
            if frame is None:  # late or duplicate media: counted by the connection, dropped
                continue
            self.metrics.frames_in.labels(type=type(frame).__name__.lower()).inc()
            await self.session.handle(frame)

    async def _writer(self) -> None:
        while True:
            while not self._queue:
                self._queue_ready.clear()
                await self._queue_ready.wait()
            frame = self._queue.popleft()
            data = self.connection.send(frame)
            await self.websocket.send_bytes(data)
            self.metrics.frames_out.labels(type=type(frame).__name__.lower()).inc()
            self.metrics.bytes_out.inc(len(data))

    async def _drain(self) -> None:
        while self._queue:
            await self.websocket.send_bytes(self.connection.send(self._queue.popleft()))

    async def _watch_session(self) -> None:
        """End the connection when the engine fails for good."""
        assert self.session is not None
        await self.session.failed.wait()
        self.request_close(CloseCode.INTERNAL_ERROR, f"engine failed: {self.session.fatal_error}"[:120])
