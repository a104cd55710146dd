"""Every documented close code, provoked over a real WebSocket on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import numpy as np
import pytest
import websockets

from presence.client.auth import authorised_url
from presence.client.connection import PresenceClient, client_hello
from presence.protocol.frames import (
    HEADER,
    MAGIC,
    MAX_FRAME_BYTES,
    AudioIn,
    AudioOut,
    ClientHello,
    Event,
    FrameType,
    encode,
)
from tests.conftest import ServerFactory, speech_like

HELLO = encode(ClientHello(client_hello()))


async def close_code_after(url: str, *messages: bytes | str, read_first: bool = False) -> tuple[int | None, str]:
    """Send the messages, then wait for the server to close; return (code, reason)."""
    async with websockets.connect(await authorised_url(url), max_size=None) as ws:
        for message in messages:
            await ws.send(message)
            if read_first:
                await ws.recv()
                read_first = False
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code is not None
        return ws.close_code, ws.close_reason or ""


def raw_header(frame_type: int, length: int = 0, version: int = 1, magic: bytes = MAGIC) -> bytes:
    return HEADER.pack(magic, version, frame_type, 0, 0, 0, 0, length)


def raw_json(frame_type: int, text: str) -> bytes:
    """A JSON frame written by hand (the codec would refuse to encode these bodies)."""
    payload = text.encode()
    return HEADER.pack(MAGIC, 1, frame_type, 0, 0, 0, 0, len(payload)) + payload


# Python's JSON parser refuses integers over 4300 digits with a plain ValueError.
HUGE_RATE_HELLO = json.dumps(client_hello()).replace('"sample_rate": 16000', '"sample_rate": ' + "9" * 5000, 1)
HUGE_INT_EVENT = '{"type": "playback", "heard_until": ' + "7" * 5000 + "}"

CASES: list[tuple[str, list[Any], int, str]] = [
    ("bad magic", [b"XX" + HELLO[2:]], 1002, "magic"),
    ("unsupported version", [raw_header(FrameType.CLIENT_HELLO, version=9)], 4000, "version"),
    ("unsupported version in the hello", [encode(ClientHello({**client_hello(), "protocol": 2}))], 4000, "protocol"),
    ("unknown type", [HELLO, raw_header(0x66)], 4001, "unknown frame type"),
    ("truncated header", [HELLO, b"PV\x01"], 4002, "shorter"),
    ("length mismatch", [HELLO, raw_header(FrameType.AUDIO_IN, 10) + b"abc"], 4002, "payload"),
    ("trailing data", [HELLO, raw_header(FrameType.AUDIO_IN, 0) + b"abc"], 4002, "after"),
    ("oversized payload", [HELLO, raw_header(FrameType.AUDIO_IN, 10**6)], 1009, "exceeds"),
    ("invalid JSON", [HELLO, raw_header(FrameType.EVENT, 3) + b"{x}"], 1007, "JSON"),
    ("odd PCM length", [HELLO, encode(AudioIn(b"\x01\x02\x03"))], 1007, "even"),
    ("wrong direction", [HELLO, encode(AudioOut(b"\x00\x00"))], 4003, "may not be sent by the client"),
    ("audio before hello", [encode(AudioIn(b"\x00\x00"))], 4004, "before the hello"),
    ("second hello", [HELLO, HELLO], 4004, "after"),
    ("text message", ["hello"], 4004, "binary"),
    (
        "a 5000-digit sample rate in the hello",
        [raw_json(FrameType.CLIENT_HELLO, HUGE_RATE_HELLO)],
        1007,
        "number too long",
    ),
    ("a 5000-digit integer in an event", [HELLO, raw_json(FrameType.EVENT, HUGE_INT_EVENT)], 1007, "too long"),
    ("first audio stamped 2^62", [HELLO, encode(AudioIn(b"\x00\x00" * 160, timestamp=2**62))], 1008, "timestamp"),
    (
        "audio stamped 10 s ahead of real time",
        [HELLO, encode(AudioIn(b"\x00\x00" * 160)), encode(AudioIn(b"\x00\x00" * 160, seq=1, timestamp=160_000))],
        1008,
        "ahead of real time",
    ),
    (
        "no common format",
        [encode(ClientHello({**client_hello(), "audio_out": [{"codec": "flac", "sample_rate": 44100}]}))],
        4005,
        "no common",
    ),
]


@pytest.mark.parametrize(("name", "messages", "code", "reason"), CASES, ids=[c[0] for c in CASES])
async def test_malformed_input_closes_with_its_documented_code(
    server_factory: ServerFactory, name: str, messages: list[Any], code: int, reason: str
) -> None:
    async with server_factory() as srv:
        got_code, got_reason = await close_code_after(srv.url, *messages)
        assert got_code == code
        assert reason.lower() in got_reason.lower()
        # The server survives and serves the next session.
        client = PresenceClient(srv.url)
        await client.connect()
        await client.close()


async def test_a_message_bigger_than_the_frame_limit_is_refused_by_the_websocket_layer(
    server_factory: ServerFactory,
) -> None:
    async with server_factory() as srv:
        code, _ = await close_code_after(srv.url, HELLO, b"\x00" * (MAX_FRAME_BYTES + 1))
        assert code == 1009


async def test_no_hello_within_the_deadline_is_a_protocol_error(server_factory: ServerFactory) -> None:
    async with server_factory() as srv:
        srv.hub.transport_config = type(srv.hub.transport_config)(hello_timeout_s=0.2)
        async with websockets.connect(await authorised_url(srv.url)) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == 1002


async def test_a_silent_client_is_closed_after_the_idle_timeout(server_factory: ServerFactory) -> None:
    async with server_factory(idle_timeout_s=0.3) as srv:
        code, reason = await close_code_after(srv.url, HELLO, read_first=True)
        assert code == 4009
        assert "idle" in reason


async def test_sessions_past_the_limit_are_told_to_try_again_later(server_factory: ServerFactory) -> None:
    async with server_factory(max_sessions=1) as srv:
        first = PresenceClient(srv.url)
        await first.connect()
        code, reason = await close_code_after(srv.url, HELLO)
        assert code == 1013
        assert "limit" in reason
        await first.close()


async def test_graceful_shutdown_closes_sessions_with_going_away(server_factory: ServerFactory) -> None:
    async with server_factory() as srv:
        client = PresenceClient(srv.url)
        await client.connect()
        srv.server.should_exit = True
        assert await client.wait_closed() == 1001
        assert "shutting down" in client.close_reason


async def test_a_reader_that_never_reads_is_closed_without_growing_the_send_queue(
    server_factory: ServerFactory,
) -> None:
    bound = 16
    # Loopback lets the kernel buffer megabytes (tcp_wmem up to 4 MiB) before backpressure
    # reaches the queue: the reply must be larger than that (180 s of 24 kHz PCM is 8.6 MB).
    # The cheapest lips (energy): the reply must outrun the socket by CPU speed alone, and a
    # costly animator on a loaded machine would take longer than the test waits to fill it.
    settings = {"send_queue_frames": bound, "scripted_reply_ms": 180_000, "max_lead_ms": 400_000, "lipsync": "energy"}
    async with server_factory(**settings) as srv:
        sock = socket.create_connection(("127.0.0.1", srv.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        async with websockets.connect(
            await authorised_url(srv.url), sock=sock, max_queue=1, max_size=None, close_timeout=1
        ) as ws:
            await ws.send(HELLO)
            await ws.recv()  # the server hello; after this the client reads nothing
            samples = np.concatenate([speech_like(0.5), np.zeros(8000, dtype=np.float32)])
            for i, offset in enumerate(range(0, len(samples), 320)):
                chunk = (samples[offset : offset + 320] * 32767).astype("<i2").tobytes()
                await ws.send(encode(AudioIn(chunk, seq=i, timestamp=offset)))
                await asyncio.sleep(0.02)
            for _ in range(200):
                if not srv.hub.transports:
                    break
                await asyncio.sleep(0.05)
            closed = srv.hub.metrics.sessions_closed.labels(code="4008")._value.get()
            assert closed == 1
            assert not srv.hub.transports


async def test_a_misbehaving_session_does_not_disturb_another_one(server_factory: ServerFactory) -> None:
    async with server_factory() as srv:
        good = PresenceClient(srv.url)
        await good.connect()

        async def misbehave() -> int | None:
            code, _ = await close_code_after(srv.url, HELLO, raw_header(0x7E), read_first=True)
            return code

        async def converse() -> None:
            for chunk in np.split(np.concatenate([speech_like(0.6), np.zeros(12_800, dtype=np.float32)]), 70):
                await good.send_audio(chunk)
                await asyncio.sleep(0.02)
            await good.wait_for_event(lambda b: b.get("type") == "metrics", 10)

        bad_code, _ = await asyncio.gather(misbehave(), converse())
        assert bad_code == 4001
        assert good.received.audio, "the good session got its reply"
        await good.close()


async def test_client_events_of_unknown_types_are_ignored(server_factory: ServerFactory) -> None:
    async with server_factory() as srv:
        client = PresenceClient(srv.url)
        await client.connect()
        await client.send_frame(Event({"type": "from_the_future", "x": 1}))
        await client.ping()
        for _ in range(100):
            if client.received.pongs:
                break
            await asyncio.sleep(0.01)
        assert client.received.pongs, "the session still answers pings"
        assert client.close_code is None
        await client.close()
