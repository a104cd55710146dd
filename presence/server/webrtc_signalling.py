"""``POST /v1/webrtc``: WHIP-style signalling, with the WebSocket's checks in the same order.

Host and Origin, then the session token, then admission, then the offer: a refusal is an HTTP
status with the close code and reason the WebSocket would have closed with, as JSON
``{"code", "reason"}``, so the page shows the same messages on either transport.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from presence.protocol.errors import CloseCode, NegotiationFailed, ProtocolError
from presence.server.auth import AuthError, bearer_token
from presence.server.webrtc import MAX_OFFER_BYTES, WebRtcConfig, WebRtcPeer, offer_from_body

if TYPE_CHECKING:
    from presence.server.app import Hub

log = logging.getLogger(__name__)

#: HTTP status for each close code a signalling request can end with.
STATUS_OF: dict[int, int] = {
    CloseCode.FORBIDDEN_ORIGIN: 403,
    CloseCode.UNAUTHORIZED: 401,
    CloseCode.TRY_AGAIN_LATER: 503,
    CloseCode.MESSAGE_TOO_BIG: 413,
    CloseCode.INTERNAL_ERROR: 500,
}


def refusal(code: int, reason: str) -> Response:
    status = STATUS_OF.get(code, 400)
    headers = {"Retry-After": "5"} if status == 503 else None
    return JSONResponse({"code": int(code), "reason": reason[:120]}, status_code=status, headers=headers)


async def _read_body(request: Request) -> bytes | None:
    """The body, or None past ``MAX_OFFER_BYTES`` (counted as it arrives, never buffered whole)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_OFFER_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def serve_offer(hub: Hub, request: Request) -> Response:
    headers = request.headers
    policy = hub.policy
    try:
        policy.check_host(headers.get("host"))
        policy.check_origin(headers.get("origin"), headers.get("host"))
    except AuthError as exc:
        hub.metrics.connections_refused.labels(reason="origin").inc()
        return refusal(CloseCode.FORBIDDEN_ORIGIN, str(exc))
    try:
        policy.check_token(bearer_token(headers.get("authorization"), request.query_params.get("token")), time.time())
    except AuthError as exc:
        hub.metrics.connections_refused.labels(reason="token").inc()
        return refusal(CloseCode.UNAUTHORIZED, str(exc))
    raw = await _read_body(request)
    if raw is None:
        return refusal(CloseCode.MESSAGE_TOO_BIG, f"offer larger than {MAX_OFFER_BYTES} bytes")
    try:
        sdp, hello = offer_from_body(json.loads(raw))
    except ProtocolError as exc:
        return refusal(exc.close_code, exc.reason)
    except ValueError:
        return refusal(CloseCode.INVALID_PAYLOAD, "body is not JSON")
    client = request.client.host if request.client else "unknown"
    why = hub.admission.connect(client)
    if why is None:
        why = hub.admit()  # the admission limits, and 1013 while the server drains
        if why is not None:
            hub.admission.disconnect(client, had_session=False)
    if why is not None:
        hub.metrics.connections_refused.labels(reason="limit").inc()
        return refusal(CloseCode.TRY_AGAIN_LATER, why)
    settings = hub.settings
    peer = WebRtcPeer(
        hub.caps,
        hub.engine.name,
        hub.make_session,
        hub.metrics,
        WebRtcConfig(send_queue_frames=settings.send_queue_frames, idle_timeout_s=settings.idle_timeout_s),
        impair=_emulated_network(settings.webrtc_netem),
    )
    try:
        answer = await peer.open(sdp, hello)
    except Exception as exc:
        await peer.abort()
        hub.admission.disconnect(client, had_session=True)
        if isinstance(exc, ProtocolError):
            code = CloseCode.NEGOTIATION_FAILED if isinstance(exc, NegotiationFailed) else exc.close_code
            return refusal(code, exc.reason)
        log.exception("webrtc session %s: could not open", peer.session_id)
        return refusal(CloseCode.INTERNAL_ERROR, "the engine could not open a session")
    hub.peers.add(peer)
    task = asyncio.create_task(peer.run(), name=f"webrtc-{peer.session_id}")
    _running.add(task)

    def ended(done: asyncio.Task[Any]) -> None:
        _running.discard(done)
        hub.peers.discard(peer)
        hub.admission.disconnect(client, had_session=True)
        if not done.cancelled() and done.exception() is not None:
            log.error("webrtc session %s ended with an error", peer.session_id, exc_info=done.exception())

    task.add_done_callback(ended)
    return JSONResponse(answer, status_code=201, headers={"Cache-Control": "no-store"})


def _emulated_network(profile: str) -> Callable[[Any], None] | None:
    if not profile:
        return None
    from presence.bench._netem import impair_peer

    log.warning("WebRTC sessions run through the emulated %s network (--webrtc-netem: benchmarks only)", profile)
    return functools.partial(impair_peer, profile=profile)


_running: set[asyncio.Task[None]] = set()  # strong references: the loop keeps only weak ones
