"""Regression tests for the adversarial review (issue 12), each over a real WebSocket on
loopback: untrusted timestamps and rates, tokens, Origin, admission limits, slowloris, ping
floods, what the HTTP side reveals, and engines that fail."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import struct
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
import websockets

from presence.client.auth import authorised_url, with_token
from presence.client.connection import PresenceClient, client_hello
from presence.engines.base import Engine, EngineSession, SessionOptions
from presence.engines.scripted import Script, ScriptedEngine, ScriptedSession
from presence.protocol.frames import AudioIn, ClientHello, encode
from presence.server.auth import mint_token
from tests.conftest import REPO, ServerFactory, silence, speech_like

HELLO = encode(ClientHello(client_hello()))
SECRET = "s" * 40


async def close_of(ws: websockets.ClientConnection, limit_s: float = 5) -> tuple[int | None, str]:
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), limit_s)
    return ws.close_code, ws.close_reason or ""


async def healthz_within(http: str, limit_s: float) -> float:
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=http, timeout=limit_s) as client:
        assert (await client.get("/healthz")).status_code == 200
    return time.monotonic() - started


async def converse(client: PresenceClient, seed: int = 1) -> dict[str, object]:
    """One spoken turn in real time; returns its metrics event."""
    audio = np.concatenate([speech_like(0.5, seed=seed), silence(0.8)])
    for offset in range(0, len(audio), 320):
        await client.send_audio(audio[offset : offset + 320])
        await asyncio.sleep(0.02)
    return await client.wait_for_event(lambda b: b.get("type") == "metrics", 10)


# ----------------------------------------------------------------- untrusted time and rate


async def test_one_frame_stamped_2_to_the_62_closes_that_session_and_nothing_else(
    server_factory: ServerFactory,
) -> None:
    async with server_factory() as srv:
        good = PresenceClient(srv.url)
        await good.connect()
        async with websockets.connect(await authorised_url(srv.url)) as attacker:
            await attacker.send(HELLO)
            await attacker.recv()
            started = time.monotonic()
            await attacker.send(encode(AudioIn(b"\x00\x00" * 160, timestamp=2**62)))
            code, reason = await close_of(attacker)
        assert code == 1008 and "timestamp" in reason
        assert time.monotonic() - started < 2, "refused before any work, not after"
        assert await healthz_within(srv.http, 1.0) < 1.0
        record = await converse(good)
        assert record["first_audio_sent_ms"] is not None, "the other session still gets its reply"
        await good.close()


async def test_timestamps_jumping_10_s_at_a_time_are_refused_not_filled_with_silence(
    server_factory: ServerFactory,
) -> None:
    async with server_factory(vad="silero") as srv:
        async with websockets.connect(await authorised_url(srv.url)) as attacker:
            await attacker.send(HELLO)
            await attacker.recv()
            with contextlib.suppress(websockets.ConnectionClosed):
                for i in range(100):  # 1000 s of timeline in 1 s of wall time, were it believed
                    await attacker.send(encode(AudioIn(b"\x00\x00" * 10, seq=i, timestamp=i * 160_000)))
                    await asyncio.sleep(0.01)
            code, reason = await close_of(attacker)
        assert code == 1008 and "ahead of real time" in reason
        # Nothing was synthesised: at most the allowed lead of silence was filled.
        assert await healthz_within(srv.http, 1.0) < 1.0


async def test_audio_sent_faster_than_real_time_is_refused(server_factory: ServerFactory) -> None:
    async with server_factory() as srv:
        client = PresenceClient(srv.url)
        await client.connect()
        speech = speech_like(20.0)
        with contextlib.suppress(websockets.ConnectionClosed):
            for offset in range(0, len(speech), 320):  # 20 s of audio as fast as the socket takes it
                await client.send_audio(speech[offset : offset + 320])
        assert await client.wait_closed() == 1008
        assert "ahead of real time" in client.close_reason or "faster than" in client.close_reason


# ----------------------------------------------------------------- tokens and origin


async def test_a_session_needs_a_token_and_the_loopback_page_gets_one(server_factory: ServerFactory) -> None:
    async with server_factory() as srv:
        async with websockets.connect(srv.url) as bare:
            code, reason = await close_of(bare)
        assert code == 4401 and "token is required" in reason
        async with httpx.AsyncClient(base_url=srv.http) as http:
            answer = await http.get("/v1/token")
            assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
            token = answer.json()["token"]
        client = PresenceClient(srv.url, token=token)
        await client.connect()
        await client.close()


async def test_tokens_signed_with_the_operators_secret_are_required_and_checked(
    server_factory: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRESENCE_AUTH_SECRET", SECRET)
    async with server_factory() as srv:
        now = time.time()
        async with httpx.AsyncClient(base_url=srv.http) as http:
            assert (await http.get("/v1/token")).status_code == 404, "the operator's backend mints tokens"
        cases = {
            "token has expired": mint_token(SECRET.encode(), now - 3600, 60),
            "signature": mint_token(b"another secret of at least thirty-two bytes", now, 60),
            "malformed": "not.a.token",
        }
        for expected, token in cases.items():
            async with websockets.connect(with_token(srv.url, token)) as ws:
                code, reason = await close_of(ws)
            assert (code, expected in reason) == (4401, True), reason
        good = mint_token(SECRET.encode(), now, 60, subject="kiosk-7")
        client = PresenceClient(srv.url, token=good)
        await client.connect()
        await client.close()
        async with websockets.connect(srv.url, additional_headers={"Authorization": f"Bearer {good}"}) as ws:
            await ws.send(HELLO)
            assert isinstance(await ws.recv(), bytes), "a Bearer header works for non-browser clients"


async def test_another_sites_page_cannot_open_a_session_or_read_a_token(server_factory: ServerFactory) -> None:
    async with server_factory(allowed_origins="https://kiosk.example") as srv:
        url = await authorised_url(srv.url)
        async with websockets.connect(url, origin=websockets.Origin("https://evil.example")) as ws:
            code, reason = await close_of(ws)
        assert code == 4403 and "evil.example" in reason
        for origin in (f"http://127.0.0.1:{srv.port}", "https://kiosk.example"):
            async with websockets.connect(url, origin=websockets.Origin(origin)) as ws:
                await ws.send(HELLO)
                assert isinstance(await ws.recv(), bytes)
        async with httpx.AsyncClient(base_url=srv.http) as http:
            cross = await http.get("/v1/token", headers={"Origin": "https://evil.example"})
            rebound = await http.get("/v1/token", headers={"Host": f"evil.example:{srv.port}"})
            fetch_meta = await http.get("/v1/token", headers={"Sec-Fetch-Site": "cross-site"})
        assert (cross.status_code, rebound.status_code, fetch_meta.status_code) == (403, 403, 403)


def test_serving_beyond_loopback_without_a_secret_refuses_to_start() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PRESENCE_AUTH_SECRET", None)
    done = subprocess.run(
        [sys.executable, "-m", "presence", "serve", "--engine", "scripted", "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 2
    assert "PRESENCE_AUTH_SECRET" in done.stderr and "--insecure-no-auth" in done.stderr


# ----------------------------------------------------------------- admission and connections


def from_address(port: int, address: str) -> socket.socket:
    """A connected socket whose source is another loopback address (another 'client')."""
    sock = socket.create_connection(("127.0.0.1", port), source_address=(address, 0))
    sock.setblocking(False)
    return sock


async def test_sockets_that_never_say_hello_do_not_lock_real_users_out(server_factory: ServerFactory) -> None:
    async with server_factory(max_sessions=4, max_sessions_per_client=3, max_pending_hellos=8) as srv:
        url = await authorised_url(srv.url)
        silent: list[websockets.ClientConnection] = []
        for _ in range(3):
            silent.append(await websockets.connect(url, sock=from_address(srv.port, "127.0.0.2")))
        async with websockets.connect(url, sock=from_address(srv.port, "127.0.0.2")) as fourth:
            code, reason = await close_of(fourth)
        assert code == 1013 and "this address" in reason
        users = [PresenceClient(srv.url) for _ in range(3)]
        for user in users:
            await user.connect()
        for ws in silent:
            await ws.close()
        for user in users:
            await user.close()


async def test_slowloris_connections_are_dropped_at_the_header_deadline_and_capped_per_address(
    server_factory: ServerFactory,
) -> None:
    async with server_factory(header_timeout_s=0.5, max_connections_per_client=5) as srv:
        loop = asyncio.get_running_loop()
        held = [from_address(srv.port, "127.0.0.3") for _ in range(6)]
        try:
            for sock in held:
                with contextlib.suppress(ConnectionError):  # the sixth may already be closed
                    await loop.sock_sendall(sock, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            # The sixth is over the per-address cap: closed at once. The others at the deadline.
            started = time.monotonic()
            ends = await asyncio.gather(*(asyncio.wait_for(_recv_or_reset(loop, s), 5) for s in held))
            assert all(end == b"" for end in ends), "every held connection was closed without an answer"
            assert time.monotonic() - started < 3
            assert await healthz_within(srv.http, 1.0) < 1.0
        finally:
            for sock in held:
                sock.close()


async def _recv_or_reset(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
    try:
        return await loop.sock_recv(sock, 100)
    except ConnectionResetError:
        return b""


def ws_handshake(port: int, path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def masked_ping(payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", 0x89, 0x80 | len(payload)) + mask + body


async def test_a_client_that_pings_and_never_reads_is_dropped(server_factory: ServerFactory) -> None:
    async with server_factory() as srv:
        loop = asyncio.get_running_loop()
        url = await authorised_url(srv.url)
        path = url.split(str(srv.port), 1)[1]
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", srv.port))
        sock.setblocking(False)
        await loop.sock_sendall(sock, ws_handshake(srv.port, path))
        ping = masked_ping(b"p" * 125)
        dropped = False
        for _ in range(200_000):  # ~26 MB of pings at most; the server must give up long before
            try:
                await asyncio.wait_for(loop.sock_sendall(sock, ping * 64), 2)
            except (ConnectionError, TimeoutError):
                dropped = True
                break
        sock.close()
        assert dropped, "the server kept buffering pongs for a peer that never reads"
        assert await healthz_within(srv.http, 1.0) < 1.0


# ----------------------------------------------------------------- what the HTTP side reveals


async def test_only_the_page_and_three_js_are_served_not_package_files(server_factory: ServerFactory) -> None:
    async with server_factory() as srv, httpx.AsyncClient(base_url=srv.http) as http:
        for hidden in (
            "/package.json",
            "/package-lock.json",
            "/node_modules/three/package.json",
            "/node_modules/.package-lock.json",
        ):
            assert (await http.get(hidden)).status_code == 404, hidden
        assert (await http.get("/protocol.js")).status_code == 200


async def test_a_clients_close_code_cannot_mint_metric_series(server_factory: ServerFactory) -> None:
    async with server_factory() as srv:
        for code in (3001, 3002, 4999):
            async with websockets.connect(await authorised_url(srv.url)) as ws:
                await ws.send(HELLO)
                await ws.recv()
                await ws.close(code)
        async with httpx.AsyncClient(base_url=srv.http) as http:
            text = (await http.get("/metrics")).text
        assert 'presence_sessions_closed_total{code="other"} 3.0' in text
        assert 'code="3001"' not in text


# ----------------------------------------------------------------- engines that fail


class CrashingSession(ScriptedSession):
    async def _speak(self, turn_id: int, text: str, started: float) -> None:
        raise ZeroDivisionError("a bug deep in the engine")


class CrashingEngine(ScriptedEngine):
    async def open_session(self, options: SessionOptions) -> ScriptedSession:
        return CrashingSession(self.script, self.clock, self.sessions)


async def test_an_engine_that_raises_in_its_reply_task_fails_that_turn_at_once(server_factory: ServerFactory) -> None:
    async with server_factory(engine=CrashingEngine(Script()), reply_timeout_s=30) as srv:
        client = PresenceClient(srv.url)
        await client.connect()
        record = await converse(client)
        error = client.received.events_of("error")[0]
        assert error["code"] == "engine_error" and "ZeroDivisionError" in error["message"]
        assert "a bug deep" not in error["message"], "internals stay in the server log"
        assert record["first_audio_sent_ms"] is None, "nothing was heard, so no first audio"
        assert record["error"]
        await client.close()


class UnopenableEngine(Engine):
    name = "unopenable"

    async def open_session(self, options: SessionOptions) -> EngineSession:
        raise RuntimeError("model server refused")


async def test_an_engine_that_cannot_open_a_session_closes_with_1011_before_any_hello(
    server_factory: ServerFactory,
) -> None:
    async with server_factory(engine=UnopenableEngine()) as srv:
        async with websockets.connect(await authorised_url(srv.url)) as ws:
            await ws.send(HELLO)
            code, reason = await close_of(ws)
        assert code == 1011 and "engine could not open a session" in reason


async def test_closed_sessions_leave_nothing_in_the_engine(server_factory: ServerFactory) -> None:
    engine = ScriptedEngine(Script())
    async with server_factory(engine=engine) as srv:
        for _ in range(5):
            client = PresenceClient(srv.url)
            await client.connect()
            await client.close()
        for _ in range(100):
            if not engine.sessions and not srv.hub.transports:
                break
            await asyncio.sleep(0.02)
        assert engine.sessions == [] and not srv.hub.transports
        assert srv.hub.admission.sessions == 0 and srv.hub.admission.pending == 0
