"""The ASGI app: static web client, health, metrics and the session WebSocket.

``create_app`` wires settings, one engine and the transports together; it decides nothing
about media. ``Server`` is uvicorn's server with one change: on shutdown it closes sessions
with 1001 (going away) before uvicorn would drop them with 1012, and on SIGTERM it first
drains (drain.py): unready, no new sessions, turns in flight finish up to ``drain_timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import importlib.util
import ipaddress
import logging
import os
import resource
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
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
from presence.media import OPUS_SAMPLE_RATE
from presence.protocol.errors import CloseCode
from presence.protocol.frames import Frame
from presence.protocol.hello import (
    ARKIT,
    OCULUS15,
    OPUS,
    PCM_S16LE,
    Agreement,
    AudioFormat,
    ServerCapabilities,
)
from presence.server.admission import Admission, AdmissionLimits
from presence.server.auth import AccessPolicy, AuthError, bearer_token, is_loopback_host, mint_token, new_secret
from presence.server.drain import DRAINING_REFUSAL, RECONNECT_REASON, close_now, turn_state
from presence.server.guards import ConnectionLimits, protocol_classes, total_connection_cap
from presence.server.metrics import Metrics
from presence.server.transport import Transport, TransportConfig
from presence.session.endpointing import make_rule
from presence.session.session import Session, SessionConfig
from presence.session.turns import TurnConfig

log = logging.getLogger(__name__)

#: Set by ``presence serve --workers N`` for its workers only (workers.py); not a setting.
WORKERS_SECRET_ENV = "PRESENCE_WORKERS_LOOPBACK_SECRET"

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


class ConfigError(Exception):
    """Settings that must not run (e.g. an exposed server without authentication)."""


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def access_policy(settings: Settings) -> AccessPolicy:
    """Tokens always, unless the operator opts out; a loopback server without a secret makes
    its own and gives its page tokens (docs/security.md)."""
    origins = frozenset(_split(settings.allowed_origins))
    if settings.auth_secret is not None:
        secret = settings.auth_secret.get_secret_value().encode()
        if len(secret) < 32:
            raise ConfigError("PRESENCE_AUTH_SECRET must be at least 32 bytes (e.g. `openssl rand -hex 32`)")
        return AccessPolicy(secret, origins, token_ttl_s=settings.token_ttl_s)
    if is_loopback_host(settings.host):
        # With --workers N the supervisor hands its workers one per-run secret, so that a token
        # one worker's page fetched is good on the sibling the kernel gives the WebSocket to.
        shared = os.environ.get(WORKERS_SECRET_ENV)
        secret = bytes.fromhex(shared) if shared else new_secret()
        return AccessPolicy(secret, origins, loopback_only=True, token_ttl_s=settings.token_ttl_s)
    if settings.insecure_no_auth:
        log.warning("serving %s WITHOUT session tokens: anyone who reaches it can use it", settings.host)
        return AccessPolicy(None, origins)
    raise ConfigError(
        f"--host {settings.host} is reachable from other machines: set PRESENCE_AUTH_SECRET "
        "(sessions then need tokens, see `presence token`) or pass --insecure-no-auth"
    )


def _client_address(scope_client: tuple[str, int] | None) -> str:
    return scope_client[0] if scope_client else "unknown"


def _address_allowed(address: str, allowed: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in allowed)


class WebFiles(StaticFiles):
    """The web client, and of node_modules only the parts of three.js the page imports:
    not the other packages, and not the package manifests."""

    ALLOWED_MODULES = ("node_modules/three/build/", "node_modules/three/examples/jsm/")
    HIDDEN = frozenset({"package.json", "package-lock.json"})

    async def get_response(self, path: str, scope: Any) -> Response:
        name = path.replace("\\", "/").lstrip("/")
        hidden = name in self.HIDDEN or (name.startswith("node_modules") and not name.startswith(self.ALLOWED_MODULES))
        if hidden:
            return Response("not found\n", status_code=404, media_type="text/plain")
        return await super().get_response(path, scope)


def web_files(directory: Path = WEB_DIR) -> WebFiles:
    """The page's files. Symlinks are followed: a checkout may link node_modules to a shared
    install, and without this StaticFiles answers 404 for three.js although the file exists."""
    return WebFiles(directory=directory, html=True, follow_symlink=True)


class Hub:
    """Everything shared by the sessions of one app: the engine, metrics, open transports."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.policy = access_policy(settings)
        self.admission = Admission(
            AdmissionLimits(
                max_sessions=settings.max_sessions,
                max_pending=settings.max_pending_hellos,
                per_client=settings.max_sessions_per_client,
            )
        )
        self.metrics = Metrics()
        self.transports: set[Transport] = set()
        self.draining = False  # set once, on SIGTERM: unready, and no new sessions
        self.peers: set[Any] = set()  # WebRtcPeer (presence.server.webrtc, imported only when used)
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
                yield_window_ms=settings.effective_yield_window_ms,
                rule=make_rule(
                    settings.confirm_rule, settings.confirm_ms, settings.final_ms, settings.predictor_threshold
                ),
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
        if self.draining:
            # Refused at the upgrade, not after it: a proxy retries another backend on a 503
            # (deploy/nginx: proxy_next_upstream http_503), a close frame it could not retry.
            self.metrics.connections_refused.labels(reason="draining").inc()
            await websocket.send_denial_response(
                Response(f"{DRAINING_REFUSAL}\n", status_code=503, media_type="text/plain")
            )
            return
        headers = websocket.headers
        try:
            self.policy.check_host(headers.get("host"))
            self.policy.check_origin(headers.get("origin"), headers.get("host"))
        except AuthError as exc:
            await self._refuse(websocket, CloseCode.FORBIDDEN_ORIGIN, str(exc), "origin")
            return
        try:
            self.policy.check_token(
                bearer_token(headers.get("authorization"), websocket.query_params.get("token")), time.time()
            )
        except AuthError as exc:
            await self._refuse(websocket, CloseCode.UNAUTHORIZED, str(exc), "token")
            return
        client = _client_address(websocket.client)
        refusal = self.admission.connect(client)
        if refusal is not None:
            await self._refuse(websocket, CloseCode.TRY_AGAIN_LATER, refusal, "limit")
            return
        transport = Transport(
            websocket,
            self.caps,
            self.engine.name,
            self.make_session,
            self.metrics,
            self.transport_config,
            admit=self.admit,
        )
        self.transports.add(transport)
        try:
            await transport.run()
        finally:
            self.transports.discard(transport)
            self.admission.disconnect(client, had_session=transport.session is not None)

    def admit(self) -> str | None:
        """A hello arrived: refused (1013) while draining, else as the admission limits say."""
        return DRAINING_REFUSAL if self.draining else self.admission.hello()

    async def serve_webrtc(self, request: Request) -> Response:
        """WebRTC signalling (docs/protocol.md): the WebSocket's checks, then offer → answer."""
        try:  # aiortc is imported only when a client asks for WebRTC
            from presence.server.webrtc_signalling import serve_offer
        except ImportError:
            reason = "this server has no WebRTC: install presence[webrtc] (aiortc)"
            return JSONResponse({"code": int(CloseCode.INTERNAL_ERROR), "reason": reason}, status_code=501)
        return await serve_offer(self, request)

    async def _refuse(self, websocket: WebSocket, code: int, reason: str, why: str) -> None:
        """Accept only to say no with a documented close code and a reason the page can show."""
        self.metrics.connections_refused.labels(reason=why).inc()
        await websocket.accept()
        await websocket.close(code, reason[:120])

    async def drain(self, timeout_s: float, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Turn unready, refuse new sessions, and close each session (1001 with the reconnect
        hint) once it has no turn in flight, or at the deadline; returns when all are closed.

        Sessions are polled every 50 ms: a turn's end is not an event the session exposes,
        and ``state()`` is its contract. ``should_stop`` (a second signal) ends the wait.
        """
        self.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        log.info("draining %d session(s), for at most %.1f s", len(self.transports) + len(self.peers), timeout_s)
        while (self.transports or self.peers) and not should_stop():
            now = loop.time()
            for transport in [*self.transports, *self.peers]:
                state = turn_state(transport.session) if transport.session is not None else None
                if close_now(state, now, deadline):
                    transport.request_close(CloseCode.GOING_AWAY, RECONNECT_REASON)
            await asyncio.sleep(0.05)

    async def going_away(self, timeout_s: float = 2.0) -> None:
        """Graceful shutdown: close every session with 1001 and wait briefly for them."""
        transports = [*self.transports, *self.peers]
        for transport in transports:
            transport.request_close(CloseCode.GOING_AWAY, "server is shutting down")
        if not transports:
            return
        waiters = [asyncio.create_task(t.finished.wait(), name="going-away-wait") for t in transports]
        try:
            await asyncio.wait(waiters, timeout=timeout_s)
        finally:
            # A session that outlives the timeout must not leave its waiter behind.
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Starlette:
    settings = settings or Settings()
    hub = Hub(settings, engine or create_engine(settings))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await hub.start()
        log.info("ready: pid %(pid)d, peak memory %(peak_rss_mb)d MB (engine and models loaded)", worker_facts(0))
        try:
            yield
        finally:
            await hub.going_away()
            await hub.engine.stop()

    async def healthz(request: Request) -> Response:
        """Liveness for load balancers; it tells nothing about the engine or the sessions."""
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        """Readiness: 200 while this worker takes new sessions, 503 once it drains; with this
        worker's pid, sessions and peak memory (each worker loads its own models)."""
        sessions = sum(1 for transport in hub.transports if transport.session is not None)
        body = {"status": "draining" if hub.draining else "ready", **worker_facts(sessions)}
        return JSONResponse(body, status_code=503 if hub.draining else 200)

    metrics_allowed = _split(settings.metrics_allow)

    async def metrics(request: Request) -> Response:
        if not _address_allowed(_client_address(request.client), metrics_allowed):
            return Response("metrics are served to --metrics-allow addresses only\n", status_code=403)
        return Response(generate_latest(metrics_registry(hub)), media_type=CONTENT_TYPE_LATEST)

    async def token(request: Request) -> Response:
        """A session token for the page a loopback server serves (no secret configured).

        With an operator's secret this endpoint does not exist: the operator's backend mints
        tokens. The Host and Origin checks keep other sites (and DNS rebinding) out; a
        cross-site fetch could not read the answer anyway (no CORS headers).
        """
        policy = hub.policy
        if not policy.loopback_only or policy.secret is None:
            return Response("not found\n", status_code=404, media_type="text/plain")
        try:
            policy.check_host(request.headers.get("host"))
            policy.check_origin(request.headers.get("origin"), request.headers.get("host"))
        except AuthError as exc:
            return Response(f"{exc}\n", status_code=403, media_type="text/plain")
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return Response("cross-site token requests are refused\n", status_code=403, media_type="text/plain")
        minted = mint_token(policy.secret, time.time(), policy.token_ttl_s)
        return JSONResponse({"token": minted, "expires_in": policy.token_ttl_s}, headers={"Cache-Control": "no-store"})

    async def avatar_glb(request: Request) -> Response:
        """The operator's GLB head (--avatar-glb); 404 tells the page to draw the 2D face."""
        path = Path(settings.avatar_glb) if settings.avatar_glb else None
        if path is None or not path.is_file():
            return Response("no GLB avatar configured\n", status_code=404, media_type="text/plain")
        return FileResponse(path, media_type="model/gltf-binary")

    routes: list[Any] = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/avatar.glb", avatar_glb),
        Route("/metrics", metrics),
        Route("/v1/token", token),
        WebSocketRoute("/v1/session", hub.serve_websocket),
        Route("/v1/webrtc", hub.serve_webrtc, methods=["POST"]),
        Mount("/", web_files(), name="web"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.hub = hub
    return app


def worker_facts(sessions: int) -> dict[str, int]:
    """What /readyz and the startup log say about this process."""
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"pid": os.getpid(), "sessions": sessions, "peak_rss_mb": peak_kib // 1024}


def metrics_registry(hub: Hub) -> CollectorRegistry:
    """This worker's registry, or with ``--workers N`` (PROMETHEUS_MULTIPROC_DIR set) every
    worker's series merged from the shared directory (prometheus-client's multiprocess mode)."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return hub.metrics.registry
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


class Server(uvicorn.Server):
    """uvicorn.Server that says goodbye properly: on SIGTERM (or SIGINT) it drains first
    (``Hub.drain``), then 1001 to every session left before uvicorn's own shutdown.
    A second signal ends the drain at once."""

    def __init__(self, config: uvicorn.Config, hub: Hub, drain_timeout_s: float = 0.0) -> None:
        super().__init__(config)
        self.hub = hub
        self.drain_timeout_s = drain_timeout_s
        self.signalled = 0

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.signalled += 1
        if self.signalled > 1 and sig == signal.SIGTERM:
            self.force_exit = True
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: Any = None) -> None:
        if self.signalled and self.drain_timeout_s > 0:
            await self.hub.drain(self.drain_timeout_s, should_stop=lambda: self.force_exit)
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
        "timeout_keep_alive": 5,
        # X-Forwarded-For is believed only from the proxies the operator names.
        "proxy_headers": bool(_split(settings.trusted_proxies)),
        "forwarded_allow_ips": _split(settings.trusted_proxies) or None,
    }
    http, ws = protocol_classes(
        ConnectionLimits(
            header_timeout_s=settings.header_timeout_s,
            per_client=settings.max_connections_per_client,
            total=total_connection_cap(settings.max_connections),
            trusted_proxies=frozenset(_split(settings.trusted_proxies)),
        )
    )
    options["http"], options["ws"] = http, ws
    if settings.tls_cert or settings.tls_key:
        if not (settings.tls_cert and settings.tls_key):
            raise ConfigError("--tls-cert and --tls-key go together")
        options["ssl_certfile"], options["ssl_keyfile"] = settings.tls_cert, settings.tls_key
    options.update(overrides)
    return uvicorn.Config(app, **options)
