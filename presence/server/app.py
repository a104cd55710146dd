"""The ASGI app: static web client, health, metrics and the session WebSocket.

``create_app`` wires settings, one engine and the transports together; it decides nothing
about media. ``Server`` is uvicorn's server with one change: on shutdown it closes sessions
with 1001 (going away) before uvicorn would drop them with 1012.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import importlib.util
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from presence.audio.vad import EnergyVad, SileroVad, VoiceActivityDetector
from presence.config import Settings
from presence.engines import create_engine
from presence.engines.base import Engine, SessionOptions
from presence.lipsync import create_animator, to_weight_set
from presence.lipsync.base import Animator
from presence.protocol.errors import CloseCode
from presence.protocol.frames import Frame
from presence.protocol.hello import (
    ARKIT,
    OCULUS15,
    OPUS,
    OPUS_SAMPLE_RATE,
    PCM_S16LE,
    Agreement,
    AudioFormat,
    ServerCapabilities,
)
from presence.server.metrics import Metrics
from presence.server.transport import Transport, TransportConfig
from presence.session.endpointing import make_rule
from presence.session.session import Session, SessionConfig
from presence.session.turns import TurnConfig

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"


def server_capabilities(settings: Settings) -> ServerCapabilities:
    pcm_in = tuple(AudioFormat(PCM_S16LE, rate) for rate in (16_000, 24_000, 48_000, 8_000, 44_100, 32_000))
    opus = (AudioFormat(OPUS, OPUS_SAMPLE_RATE),) if _opus_available() else ()
    return ServerCapabilities(
        audio_in=pcm_in + opus,
        # Opus output puts that session's timeline at 48 kHz (docs/protocol.md).
        audio_out=(AudioFormat(PCM_S16LE, settings.output_sample_rate), *opus),
        weight_sets=(OCULUS15, ARKIT),
        animation_fps=settings.animation_fps,
    )


def _opus_available() -> bool:
    """Opus input needs the PyAV-based decoder module; offer it only when it is installed."""
    return importlib.util.find_spec("presence.audio.opus") is not None


def make_vad(settings: Settings) -> VoiceActivityDetector:
    """A fresh detector for one session (Silero shares its model, not its state)."""
    if settings.vad == "energy":
        return EnergyVad()
    return SileroVad()


class Hub:
    """Everything shared by the sessions of one app: the engine, metrics, open transports."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.metrics = Metrics()
        self.transports: set[Transport] = set()
        self.caps = server_capabilities(settings)
        self.transport_config = TransportConfig(
            send_queue_frames=settings.send_queue_frames, idle_timeout_s=settings.idle_timeout_s
        )
        self.session_config = SessionConfig(
            output_sample_rate=settings.output_sample_rate,
            max_lead_ms=settings.max_lead_ms,
            reply_timeout_s=settings.reply_timeout_s,
            turns=TurnConfig(
                speculate_ms=settings.speculate_ms,
                confirm_ms=settings.confirm_ms,
                min_barge_in_ms=settings.min_barge_in_ms,
                rule=make_rule(settings.confirm_rule, settings.confirm_ms, settings.final_ms),
            ),
        )

    @property
    def animator_kind(self) -> str:
        """Phoneme-driven lips when the engine reports phonemes; for cloud speech models
        (which hear the user themselves and send the reply's text with its audio) the text
        aligned to the audio; otherwise audio frame by frame."""
        kind = self.settings.lipsync
        if kind == "auto":
            if self.engine.phoneme_timings:
                kind = "phonemes"
            else:
                kind = "transcript" if self.engine.hears_audio else "audio-causal"
        return kind

    def make_animator(self, sample_rate: int | None = None) -> Animator:
        rate = sample_rate or self.settings.output_sample_rate
        return create_animator(self.animator_kind, rate, self.settings.animation_fps)

    async def start(self) -> None:
        """Start the engine and load the lip-sync model, so the first reply waits for neither."""
        await asyncio.gather(self.engine.start(), asyncio.to_thread(self.make_animator))

    async def make_session(self, agreement: Agreement, send: Callable[[Frame], None]) -> Session:
        engine_session = await self.engine.open_session(
            SessionOptions(session_id=agreement.session_id, persona=self.settings.persona)
        )
        rate = agreement.audio_out.sample_rate  # the session's output timeline runs at it
        return Session(
            agreement,
            engine_session,
            send,
            vad=make_vad(self.settings),
            make_animator=functools.partial(self.make_animator, rate),
            config=dataclasses.replace(self.session_config, output_sample_rate=rate),
            map_weights=to_weight_set,
            on_turn_end=self.metrics.observe_turn,
        )

    async def serve_websocket(self, websocket: WebSocket) -> None:
        if len(self.transports) >= self.settings.max_sessions:
            await websocket.accept()
            await websocket.close(CloseCode.TRY_AGAIN_LATER, "server is at its session limit")
            return
        transport = Transport(
            websocket, self.caps, self.engine.name, self.make_session, self.metrics, self.transport_config
        )
        self.transports.add(transport)
        try:
            await transport.run()
        finally:
            self.transports.discard(transport)

    async def going_away(self, timeout_s: float = 2.0) -> None:
        """Graceful shutdown: close every session with 1001 and wait briefly for them."""
        transports = list(self.transports)
        for transport in transports:
            transport.request_close(CloseCode.GOING_AWAY, "server is shutting down")
        if transports:
            await asyncio.wait([asyncio.create_task(t.finished.wait()) for t in transports], timeout=timeout_s)


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Starlette:
    settings = settings or Settings()
    hub = Hub(settings, engine or create_engine(settings))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await hub.start()
        try:
            yield
        finally:
            await hub.going_away()
            await hub.engine.stop()

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "engine": hub.engine.name, "sessions": len(hub.transports)})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(hub.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def avatar_glb(request: Request) -> Response:
        """The operator's GLB head (--avatar-glb); 404 tells the page to draw the 2D face."""
        path = Path(settings.avatar_glb) if settings.avatar_glb else None
        if path is None or not path.is_file():
            return Response("no GLB avatar configured\n", status_code=404, media_type="text/plain")
        return FileResponse(path, media_type="model/gltf-binary")

    routes: list[Any] = [
        Route("/healthz", healthz),
        Route("/avatar.glb", avatar_glb),
        Route("/metrics", metrics),
        WebSocketRoute("/v1/session", hub.serve_websocket),
        Mount("/", StaticFiles(directory=WEB_DIR, html=True), name="web"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.hub = hub
    return app


class Server(uvicorn.Server):
    """uvicorn.Server that says goodbye properly: 1001 to every session before shutdown."""

    def __init__(self, config: uvicorn.Config, hub: Hub) -> None:
        super().__init__(config)
        self.hub = hub

    async def shutdown(self, sockets: Any = None) -> None:
        await self.hub.going_away()
        await super().shutdown(sockets)


def uvicorn_config(app: Starlette, settings: Settings, **overrides: Any) -> uvicorn.Config:
    from presence.protocol.frames import MAX_FRAME_BYTES

    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "ws_max_size": MAX_FRAME_BYTES,  # bigger messages are refused by the WebSocket layer (1009)
        "ws_ping_interval": 20.0,
        # Compression costs CPU and latency on every frame and PCM/Opus barely compress;
        # profiling put deflate at a third of the server's send path.
        "ws_per_message_deflate": False,
        "lifespan": "on",
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)
