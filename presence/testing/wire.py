"""Raw connections to a presence server, for probes that must misbehave on purpose.

Every raw connection of the reliability suite (``websockets.connect`` without the Python
client, or a bare TCP socket that speaks the upgrade by hand) goes through ``session_request``,
so that one change here adapts all of them when the server starts asking for credentials.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import time
from typing import Any
from urllib.parse import urlsplit

import websockets
from websockets.asyncio.client import ClientConnection

from presence.client.auth import authorised_url
from presence.client.connection import client_hello
from presence.protocol.frames import ClientHello, encode

HELLO = encode(ClientHello(client_hello()))
#: A second loopback address: "another user" whose traffic per-client limits must not count
#: with the attacker's (all of 127.0.0.0/8 is loopback on Linux).
OTHER_CLIENT = "127.0.0.2"


async def session_request(url: str) -> tuple[str, dict[str, str]]:
    """(URL, extra upgrade headers) for one raw session connection: the URL with a session
    token (docs/security.md), from ``$PRESENCE_TOKEN`` or asked of the loopback server."""
    return await authorised_url(url), {}


async def open_raw(url: str, local_host: str | None = None, **kwargs: Any) -> ClientConnection:
    """A WebSocket to ``url`` with no presence handshake sent; ``local_host`` picks the source address."""
    target, headers = await session_request(url)
    options: dict[str, Any] = {"max_size": None, "compression": None, "open_timeout": 10, "close_timeout": 2, **kwargs}
    if local_host is not None:
        options["local_addr"] = (local_host, 0)
    return await websockets.connect(target, additional_headers=headers, **options)


def upgrade_request(target: str, headers: dict[str, str]) -> bytes:
    """The HTTP upgrade request for ``session_request``'s answer, for a socket driven by hand."""
    parts = urlsplit(target)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


OP_BINARY = 0x2
OP_PING = 0x9


def client_frame(opcode: int, payload: bytes, mask: bytes | None = None) -> bytes:
    """One masked, final WebSocket frame as a client must send it (RFC 6455 §5.2).

    A zero ``mask`` is legal and leaves the payload as is (a flood's frames are built once)."""
    mask = os.urandom(4) if mask is None else mask
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 2**16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


async def upgraded_socket(url: str, recv_buffer: int = 4096, limit_s: float = 10) -> socket.socket:
    """A non-blocking TCP socket on which the WebSocket upgrade succeeded and nothing more was read.

    The small receive buffer lets the server's writes back up into its own memory, as a
    client that never reads would make them."""
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, recv_buffer)
    sock.setblocking(False)
    await asyncio.wait_for(loop.sock_connect(sock, (parts.hostname or "127.0.0.1", parts.port or 80)), limit_s)
    await loop.sock_sendall(sock, upgrade_request(*await session_request(url)))
    response = b""
    deadline = time.monotonic() + limit_s
    while b"\r\n\r\n" not in response:
        # Read one byte at a time so not a byte past the handshake leaves the kernel buffer.
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 1), max(0.01, deadline - time.monotonic()))
        if not chunk:
            sock.close()
            raise ConnectionError("the server closed the connection during the upgrade")
        response += chunk
    if not response.startswith(b"HTTP/1.1 101"):
        sock.close()
        raise ConnectionError(f"upgrade refused: {response.splitlines()[0]!r}")
    return sock


async def http_get(
    port: int, path: str, limit_s: float = 1.0, local_host: str = OTHER_CLIENT
) -> tuple[int, bytes, float]:
    """(status, body, milliseconds) of one GET over a fresh connection; raises on timeout or refusal."""
    start = time.monotonic()

    async def get() -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(local_host, 0))
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            response = await reader.read()
            head, _, body = response.partition(b"\r\n\r\n")
            return int(head.split()[1]), body
        finally:
            writer.close()

    status, body = await asyncio.wait_for(get(), limit_s)
    return status, body, (time.monotonic() - start) * 1000


async def sessions_active(port: int, limit_s: float = 2.0) -> float:
    """The server's ``presence_sessions_active`` gauge, read from /metrics as the operator would
    (from 127.0.0.1: servers may show /metrics to chosen addresses only)."""
    _, body, _ = await http_get(port, "/metrics", limit_s, local_host="127.0.0.1")
    for line in body.decode().splitlines():
        if line.startswith("presence_sessions_active "):
            return float(line.split()[1])
    raise ValueError("/metrics has no presence_sessions_active")
