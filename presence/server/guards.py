"""Connection-level guards below the ASGI app: what uvicorn does not bound by itself.

uvicorn keeps a connection whose request headers never finish (slowloris), accepts as many
connections as the process has file descriptors, and answers WebSocket pings by writing a pong
without flow control (a client that pings and never reads grows the server's write buffer
without end). These protocol subclasses add, per server:

- a deadline for a request's headers (``header_timeout_s``) from the connection's first byte
  and from the start of each further request;
- a cap on open connections per client address (trusted proxies exempt: behind a proxy every
  session comes from it) and in total (below the descriptor limit, so the server stays
  reachable and says so in its log);
- a cap on a WebSocket's unsent output: past it the peer is not reading and is dropped.

``protocol_classes(limits)`` returns the HTTP and WebSocket protocol classes for
``uvicorn.Config(http=..., ws=...)``.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

log = logging.getLogger(__name__)

FD_RESERVE = 64  # descriptors kept for files, models and the engines' own sockets


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    header_timeout_s: float = 10.0
    per_client: int = 64
    total: int = 4096
    ws_max_unsent_bytes: int = 1 << 20
    trusted_proxies: frozenset[str] = frozenset()


def raise_fd_limit() -> int:
    """Raise the soft descriptor limit to the hard one; returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def total_connection_cap(requested: int) -> int:
    """At most ``requested`` connections, and never so many that descriptors run out."""
    soft = raise_fd_limit()
    return max(16, min(requested, soft - FD_RESERVE))


class _Refusals:
    """Logs refused connections at most once per interval, with a count (never a flood)."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self._count: Counter[str] = Counter()
        self._last = 0.0

    def note(self, why: str) -> None:
        self._count[why] += 1
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            summary = ", ".join(f"{n} × {reason}" for reason, n in self._count.items())
            log.warning("refused connections: %s", summary)
            self._count.clear()


class _Book:
    """Open connections per client address, shared by the HTTP and WebSocket protocols."""

    def __init__(self) -> None:
        self.per_client: Counter[str] = Counter()
        self.total = 0
        self.refusals = _Refusals()

    def enter(self, client: str, limits: ConnectionLimits) -> bool:
        if self.total >= limits.total:
            self.refusals.note("server at its connection limit")
            return False
        if client not in limits.trusted_proxies and self.per_client[client] >= limits.per_client:
            self.refusals.note(f"client {client} at its connection limit")
            return False
        self.total += 1
        self.per_client[client] += 1
        return True

    def leave(self, client: str) -> None:
        self.total -= 1
        self.per_client[client] -= 1
        if self.per_client[client] <= 0:
            del self.per_client[client]


def _client_of(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"


def protocol_classes(limits: ConnectionLimits) -> tuple[type[asyncio.Protocol], type[asyncio.Protocol]]:
    """HTTP and WebSocket protocol classes that enforce ``limits`` (one book per call)."""
    book = _Book()

    class GuardedHttp(HttpToolsProtocol):
        guard_limits: ClassVar[ConnectionLimits] = limits

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self._guard_client = _client_of(transport)
            self._guard_counted = book.enter(self._guard_client, limits)
            self._guard_deadline: asyncio.TimerHandle | None = None
            super().connection_made(transport)
            if not self._guard_counted:
                transport.abort()
                return
            self._arm_header_deadline()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._guard_deadline is None:
                self._arm_header_deadline()

        def on_headers_complete(self) -> None:
            self._disarm_header_deadline()
            super().on_headers_complete()

        def handle_websocket_upgrade(self) -> None:
            # The WebSocket protocol takes the connection over, and counts it from here.
            self._disarm_header_deadline()
            self._release()
            super().handle_websocket_upgrade()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_deadline()
            self._release()
            super().connection_lost(exc)

        def _release(self) -> None:
            if self._guard_counted:
                self._guard_counted = False
                book.leave(self._guard_client)

        def _arm_header_deadline(self) -> None:
            self._guard_deadline = self.loop.call_later(limits.header_timeout_s, self._header_deadline_passed)

        def _disarm_header_deadline(self) -> None:
            if self._guard_deadline is not None:
                self._guard_deadline.cancel()
                self._guard_deadline = None

        def _header_deadline_passed(self) -> None:
            self._guard_deadline = None
            book.refusals.note("request headers not complete in time")
            self.transport.close()

    class GuardedWebSocket(WebSocketsSansIOProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._guard_client = "unknown"
            self._guard_counted = False

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self._guard_client = _client_of(transport)
            # Counted past the total cap too: the HTTP side already admitted this connection.
            book.total += 1
            book.per_client[self._guard_client] += 1
            self._guard_counted = True
            super().connection_made(transport)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._guard_counted:
                self._guard_counted = False
                book.leave(self._guard_client)
            super().connection_lost(exc)

        def handle_ping(self) -> None:
            super().handle_ping()
            if self.transport.get_write_buffer_size() > limits.ws_max_unsent_bytes:
                # Pongs pile up unsent: the peer pings but does not read. Drop it.
                book.refusals.note("WebSocket peer not reading its pongs")
                self.transport.abort()

    return GuardedHttp, GuardedWebSocket
