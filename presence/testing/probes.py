"""Exhaustion probes against a running ``presence serve`` process (issue #12); faults are in ``_faults``.

Each probe is bounded in count and time and stops by itself; it attacks over real loopback
sockets, watches the server from outside (/healthz, /metrics, /proc) and returns a
``Probe``: the expectation it checks, whether it held, and what was measured. The tests in
``tests/reliability`` run them small and assert ``passed``; ``presence bench soak`` runs them
at full size and reports them. A probe never trusts the server to stop: the caller's
``presence_process`` kills it if SIGTERM does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import websockets
from websockets.asyncio.client import ClientConnection

from presence.audio.signals import silence, speech_like
from presence.client.connection import PresenceClient
from presence.protocol.frames import AudioIn, ServerHello, decode, encode
from presence.testing.servers import PACKAGE_ROOT, ServerProcess
from presence.testing.turns import FRAME_SAMPLES, speak_turn
from presence.testing.wire import (
    HELLO,
    OP_BINARY,
    OP_PING,
    OTHER_CLIENT,
    client_frame,
    http_get,
    open_raw,
    sessions_active,
    upgraded_socket,
)

MB = 2**20
#: Close codes that say nothing about why an attacker was stopped (or that the server broke).
NOT_A_VERDICT = frozenset({1000, 1001, 1006, 1011})


@dataclass(slots=True)
class Probe:
    name: str
    expectation: str
    passed: bool = False
    measured: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for an assertion message or a log: verdict, expectation, measurements."""
        values = ", ".join(f"{key}={value}" for key, value in self.measured.items())
        return f"{self.name}: {'held' if self.passed else 'FAILED'} ({self.expectation}); {values}"


def documented_close_codes(protocol_md: Path | None = None) -> frozenset[int]:
    """The codes in docs/protocol.md's close-code table (empty when the docs are not at hand)."""
    path = protocol_md or Path(PACKAGE_ROOT) / "docs" / "protocol.md"
    if not path.is_file():
        return frozenset()
    return frozenset(int(code) for code in re.findall(r"^\| (\d{4}) \|", path.read_text(), flags=re.MULTILINE))


def good_speech(seed: int = 0) -> np.ndarray:
    """A synthetic user turn, 0.6 s voiced then silence. The energy VAD takes it for speech;
    Silero does not (probabilities 0.1–0.4): with Silero, pass real speech as ``speech``."""
    return np.concatenate([speech_like(0.6, seed=seed), silence(0.1)])


async def healthz_ms(port: int, limit_s: float = 1.0) -> float | None:
    """Milliseconds /healthz took to answer 200, or None if it did not within ``limit_s``."""
    try:
        status, _, ms = await http_get(port, "/healthz", limit_s)
    except (OSError, TimeoutError, ValueError, IndexError):
        return None
    return ms if status == 200 else None


@contextlib.asynccontextmanager
async def _running(work: Coroutine[Any, Any, None], name: str) -> AsyncIterator[None]:
    """Run ``work`` in the background for the block, cancelled at its end."""
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def _health_watch(port: int, every_s: float = 0.25, limit_s: float = 1.0) -> AsyncIterator[list[float | None]]:
    """Ask /healthz every ``every_s`` while the block runs; yields the answers (ms or None)."""
    answers: list[float | None] = []

    async def poll() -> None:
        while True:
            answers.append(await healthz_ms(port, limit_s))
            await asyncio.sleep(every_s)

    async with _running(poll(), "probe-healthz"):
        yield answers


@contextlib.asynccontextmanager
async def _rss_watch(server: ServerProcess, kill_above: int, every_s: float = 0.1) -> AsyncIterator[dict[str, int]]:
    """Track the server's peak RSS; SIGKILL it past ``kill_above`` so a probe cannot eat the machine."""
    seen = {"start": server.rss_bytes(), "peak": server.rss_bytes(), "killed": 0}

    async def watch() -> None:
        while server.alive():
            rss = server.rss_bytes()
            seen["peak"] = max(seen["peak"], rss)
            if rss > kill_above:
                seen["killed"] = 1
                server.proc.kill()
                return
            await asyncio.sleep(every_s)

    try:
        async with _running(watch(), "probe-rss"):
            yield seen
    finally:
        seen["end"] = server.rss_bytes()


async def wait_until(condition: Callable[[], Awaitable[bool]], limit_s: float, every_s: float = 0.1) -> float | None:
    """Seconds until ``condition`` held, or None if it did not within ``limit_s``."""
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        with contextlib.suppress(OSError, TimeoutError, ValueError):
            if await condition():
                return time.monotonic() - start
        await asyncio.sleep(every_s)
    return None


async def no_sessions(server: ServerProcess) -> bool:
    return await sessions_active(server.port) == 0


async def _close_all(sockets: list[ClientConnection]) -> None:
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


# ----------------------------------------------------------------------------- exhaustion


async def pre_hello_flood(server: ServerProcess, sockets: int, wait_s: float = 5.0) -> Probe:
    """Many sockets that never send a hello; then a real user (another address) asks for a session."""
    probe = Probe("pre-hello flood", f"with {sockets} silent sockets open, a real user still gets a session")
    flood: list[ClientConnection] = []
    failed = 0

    async def open_one() -> None:
        nonlocal failed
        try:
            flood.append(await open_raw(server.url))
        except (OSError, TimeoutError, websockets.InvalidHandshake):
            failed += 1

    await asyncio.gather(*(open_one() for _ in range(sockets)))
    still_open = sum(1 for ws in flood if ws.close_code is None)
    started = time.monotonic()
    got_session, user_code = False, None
    try:
        user = await open_raw(server.url, local_host=OTHER_CLIENT)
        try:
            await user.send(HELLO)
            reply = await asyncio.wait_for(user.recv(), wait_s)
            got_session = isinstance(reply, bytes) and isinstance(decode(reply), ServerHello)
        except websockets.ConnectionClosed as exc:
            user_code = exc.rcvd.code if exc.rcvd else None
        finally:
            await user.close()
    except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
        user_code = None
        probe.measured["user_error"] = type(exc).__name__
    waited_ms = (time.monotonic() - started) * 1000
    await _close_all(flood)
    probe.passed = got_session
    probe.measured.update(
        flood_opened=len(flood),
        flood_failed=failed,
        flood_open_when_user_came=still_open,
        user_got_session=got_session,
        user_close_code=user_code,
        user_wait_ms=round(waited_ms, 1),
    )
    return probe


async def slowloris(server: ServerProcess, sockets: int, hold_s: float) -> Probe:
    """Partial HTTP headers held open (a byte now and then); /healthz must answer all along.

    Start the server with a descriptor cap below ``sockets`` (``presence_process(nofile=...)``)
    to model the issue's 1100 connections against a 1024-descriptor limit."""
    probe = Probe("slowloris", f"with {sockets} partial-header connections held {hold_s:g} s, /healthz answers in 1 s")
    loop = asyncio.get_running_loop()
    held: list[socket.socket] = []
    failed = 0

    async def open_one() -> None:
        nonlocal failed
        sock = socket.socket()
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", server.port)), 5)
            await loop.sock_sendall(sock, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            held.append(sock)
        except (OSError, TimeoutError):
            failed += 1
            sock.close()

    try:
        for start in range(0, sockets, 100):
            await asyncio.gather(*(open_one() for _ in range(min(100, sockets - start))))
        async with _health_watch(server.port, every_s=0.5) as answers:
            deadline = loop.time() + hold_s
            while loop.time() < deadline:
                for sock in held:
                    with contextlib.suppress(OSError):
                        sock.send(b"X-a: b\r\n")  # one more header line: never complete
                await asyncio.sleep(0.5)
        dropped_by_server = sum(1 for sock in held if _peer_closed(sock))
    finally:
        for sock in held:
            sock.close()
    answered = [ms for ms in answers if ms is not None]
    probe.passed = bool(answers) and len(answered) == len(answers) and server.alive()
    probe.measured.update(
        held=len(held),
        connect_failed=failed,
        closed_by_server=dropped_by_server,
        healthz_asked=len(answers),
        healthz_answered=len(answered),
        healthz_max_ms=round(max(answered), 1) if answered else None,
    )
    return probe


def _peer_closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


async def ping_flood(
    server: ServerProcess, megabytes: float, limit_s: float, bound_mb: float = 24, kill_mb: float = 1500
) -> Probe:
    """WebSocket PINGs (125-byte payloads) from a client that never reads: up to ``megabytes``
    sent within ``limit_s``. Every ping asks for a pong the client will not take; without flow
    control the server keeps them all in memory."""
    probe = Probe(
        "ping flood",
        f"{megabytes:g} MB of WebSocket pings from a client that never reads grow server RSS < {bound_mb:g} MB",
    )
    loop = asyncio.get_running_loop()
    batch = client_frame(OP_PING, b"p" * 125, mask=bytes(4)) * 1000
    sent = 0
    closed_by_server = False
    started = loop.time()
    sock = await upgraded_socket(server.url)
    # The session opens (and a fresh server loads its VAD) before the baseline: the probe
    # measures what the pings cost, not the first session. After the server hello the client
    # reads nothing more.
    try:
        await loop.sock_sendall(sock, client_frame(OP_BINARY, HELLO))
        await asyncio.wait_for(loop.sock_recv(sock, 4096), 10)
    except BaseException:
        sock.close()
        raise
    async with _rss_watch(server, int(kill_mb * MB)) as rss:
        try:
            deadline = loop.time() + limit_s
            while sent < megabytes * MB and (remaining := deadline - loop.time()) > 0:
                try:
                    await asyncio.wait_for(loop.sock_sendall(sock, batch), remaining)
                except TimeoutError:
                    break  # the server stopped reading: our side is the one held back now
                except OSError:
                    closed_by_server = True
                    break
                sent += len(batch)
        finally:
            sock.close()
    growth_mb = (rss["peak"] - rss["start"]) / MB
    probe.passed = growth_mb < bound_mb and not rss["killed"] and server.alive()
    probe.measured.update(
        sent_mb=round(sent / MB, 1),
        seconds=round(loop.time() - started, 1),
        rss_start_mb=round(rss["start"] / MB, 1),
        rss_peak_mb=round(rss["peak"] / MB, 1),
        rss_growth_mb=round(growth_mb, 1),
        closed_by_server=closed_by_server,
        killed_at_limit=bool(rss["killed"]),
    )
    return probe


async def timestamp_attack(
    server: ServerProcess,
    mode: str,
    frames: int = 200,
    watch_s: float = 6.0,
    close_within_s: float = 5.0,
    kill_mb: float = 1500,
    speech: np.ndarray | None = None,
) -> Probe:
    """AUDIO_IN timestamps the client controls: one frame at 2^62 (``mode="far"``), or +10 s per
    frame at 100 frames/s (``mode="jumps"``). The server must stay responsive — /healthz within
    1 s, another session's turn completes — and close the attacker with a documented code."""
    what = "one AUDIO_IN at timestamp 2^62" if mode == "far" else f"{frames} AUDIO_IN frames each +10 s at 100/s"
    probe = Probe(
        f"timestamp attack ({mode})",
        f"{what}: /healthz answers in 1 s, another session's turn completes, attacker closed with a documented code",
    )
    documented = documented_close_codes()
    good = PresenceClient(server.url)
    await good.connect()
    attacker = await open_raw(server.url)
    await attacker.send(HELLO)
    await asyncio.wait_for(attacker.recv(), 5)
    attacker_code: int | None = None

    async def attack() -> None:
        nonlocal attacker_code
        payload = bytes(2 * FRAME_SAMPLES)
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            if mode == "far":
                await attacker.send(encode(AudioIn(payload, seq=0, timestamp=2**62)))
            else:
                for i in range(frames):
                    await attacker.send(encode(AudioIn(payload, seq=i, timestamp=i * 160_000)))
                    await asyncio.sleep(max(0.0, start + (i + 1) * 0.01 - loop.time()))
            await asyncio.wait_for(attacker.wait_closed(), close_within_s)
        except (websockets.ConnectionClosed, TimeoutError):
            pass
        attacker_code = attacker.close_code

    async with _rss_watch(server, int(kill_mb * MB)) as rss, _health_watch(server.port) as answers:
        attack_task = asyncio.create_task(attack(), name="probe-attacker")
        turn = await speak_turn(good, good_speech() if speech is None else speech, limit_s=watch_s)
        await attack_task
    if attacker.close_code is None:
        attacker.transport.abort()  # a stalled server would not answer a closing handshake
    with contextlib.suppress(Exception):
        await asyncio.wait_for(good.close(), 1.5)
    answered = [ms for ms in answers if ms is not None]
    responsive = bool(answers) and len(answered) == len(answers)
    closed_well = attacker_code in documented - NOT_A_VERDICT
    probe.passed = responsive and turn.completed and closed_well and server.alive()
    probe.measured.update(
        healthz_asked=len(answers),
        healthz_answered=len(answered),
        healthz_max_ms=round(max(answered), 1) if answered else None,
        other_turn_completed=turn.completed,
        other_turn_first_audio_ms=round(turn.first_audio_ms, 1) if turn.first_audio_ms is not None else None,
        other_turn_error=turn.error,
        attacker_close_code=attacker_code,
        rss_start_mb=round(rss["start"] / MB, 1),
        rss_peak_mb=round(rss["peak"] / MB, 1),
        server_alive=server.alive(),
        killed_at_limit=bool(rss["killed"]),
    )
    return probe


def client_address(index: int) -> str:
    """A distinct loopback source address per simulated user (127.0.1.1, 127.0.1.2, …)."""
    return f"127.0.{1 + index // 250}.{1 + index % 250}"


async def many_sessions(server: ServerProcess, sessions: int, release_s: float = 15.0) -> Probe:
    """``sessions`` users, each from its own address, say hello at once: each is accepted or refused
    with 1013; the server stays up. (Distinct addresses: per-address caps are the flood probes' business.)"""
    probe = Probe(f"{sessions} sessions at once", "each accepted or refused with 1013; server up; all released after")
    opened: list[ClientConnection] = []
    outcomes: dict[str, int] = {}

    async def one(index: int) -> None:
        try:
            ws = await open_raw(server.url, local_host=client_address(index))
            opened.append(ws)
            await ws.send(HELLO)
            reply = await asyncio.wait_for(ws.recv(), 10)
            key = "accepted" if isinstance(reply, bytes) and isinstance(decode(reply), ServerHello) else "other reply"
        except websockets.ConnectionClosed as exc:
            key = f"closed {exc.rcvd.code if exc.rcvd else 'without code'}"
        except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
            key = type(exc).__name__
        outcomes[key] = outcomes.get(key, 0) + 1

    rss0 = server.rss_bytes()
    started = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(sessions)))
    all_answered_s = time.monotonic() - started
    rss_open = server.rss_bytes()
    health = await healthz_ms(server.port, 2.0)
    await _close_all(opened)
    released = await wait_until(lambda: no_sessions(server), release_s)
    clean = outcomes.get("accepted", 0) + outcomes.get("closed 1013", 0) == sessions
    probe.passed = clean and health is not None and released is not None and server.alive()
    probe.measured.update(
        outcomes=outcomes,
        all_answered_s=round(all_answered_s, 2),
        healthz_ms=round(health, 1) if health is not None else None,
        rss_before_mb=round(rss0 / MB, 1),
        rss_open_mb=round(rss_open / MB, 1),
        rss_after_close_mb=round(server.rss_bytes() / MB, 1),
        released_s=round(released, 2) if released is not None else None,
    )
    return probe
