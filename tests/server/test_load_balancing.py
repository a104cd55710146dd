"""Debian's nginx with deploy/nginx/presence-lb.conf in front of two real `presence serve`
processes: sessions spread over both, survive one backend being killed, and a backend that
drains (SIGTERM) finishes the turn in flight, closes 1001 with the reconnect hint, and the
client's reconnect lands on the other backend, for the Python client and `presence talk`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from presence.client.connection import PresenceClient
from presence.client.reconnect import connect_with_retry
from presence.client.talk import talk, write_wav
from presence.server.auth import mint_token
from presence.server.drain import RECONNECT_REASON
from presence.testing.nginx import LB_CONF, nginx_in_front
from presence.testing.servers import free_port
from presence.testing.tls import throwaway_certificate
from tests.conftest import REPO, silence, speech_like

SECRET = "a secret every backend of the pool shares"


@dataclass
class Backend:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def ready(self) -> tuple[int, dict[str, Any]]:
        """(status, body) of this backend's own /readyz, bypassing the proxy."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def sessions(self) -> int:
        return int(self.ready()[1]["sessions"])


def wait_until(condition: Callable[[], bool], limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


async def until(condition: Callable[[], bool], limit_s: float, what: str) -> None:
    """Poll a condition that reads a backend over HTTP, off the event loop."""
    await asyncio.to_thread(wait_until, condition, limit_s, what)


def _answers(backend: Backend) -> bool:
    if backend.process.poll() is not None:
        pytest.fail(f"presence serve exited with {backend.process.returncode}:\n{backend.log.read_text()}")
    try:
        return backend.ready()[0] == 200
    except OSError:
        return False


@contextlib.contextmanager
def backends(tmp: Path, count: int, *extra: str) -> Iterator[list[Backend]]:
    """`count` presence processes (scripted engine) started together, each on its own port."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PRESENCE_AUTH_SECRET": SECRET, "PYTHONUNBUFFERED": "1"}
    started: list[Backend] = []
    try:
        for _ in range(count):
            port = free_port()
            log = tmp / f"backend-{port}.log"
            cmd = [sys.executable, "-m", "presence.cli", "serve", "--engine", "scripted", "--vad", "energy"]
            cmd += ["--host", "127.0.0.1", "--port", str(port), "--trusted-proxies", "127.0.0.1", *extra]
            with log.open("wb") as out:
                process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
            started.append(Backend(port, process, log))
        for backend in started:
            wait_until(lambda b=backend: _answers(b), 60, f"backend {backend.port} to be ready")  # type: ignore[misc]
        yield started
    finally:
        for backend in started:
            if backend.process.poll() is None:
                backend.process.kill()
            backend.process.wait(10)
            print(f"--- backend {backend.port} (shown when the test fails)\n{backend.log.read_text()}")


def nginx_pool(upstream_ports: list[int], cert: Path, key: Path) -> contextlib.AbstractContextManager[int]:
    """deploy/nginx/presence-lb.conf with this test's backends and certificate."""
    return nginx_in_front(upstream_ports, LB_CONF, (cert, key))


@dataclass
class Pool:
    backends: list[Backend]
    url: str  # the session URL on the proxy
    cert: Path  # the proxy's certificate, which the test's clients trust

    @property
    def trust(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


@contextlib.asynccontextmanager
async def pool(tmp: Path, *extra: str) -> AsyncIterator[Pool]:
    cert, key = throwaway_certificate()
    with backends(tmp, 2, *extra) as started, nginx_pool([b.port for b in started], cert, key) as port:
        yield Pool(started, f"wss://127.0.0.1:{port}/v1/session", cert)


def token() -> str:
    return mint_token(SECRET.encode(), time.time(), 120)


async def open_session(url: str, trust: ssl.SSLContext) -> PresenceClient:
    client = PresenceClient(url, token=token(), ssl_context=trust)
    await client.connect()
    return client


async def speak(client: PresenceClient, speech_s: float = 0.5) -> None:
    """An utterance and then silence, paced as a microphone would send it, until the session ends."""
    audio = np.concatenate([speech_like(speech_s), silence(0.6)])
    with contextlib.suppress(Exception):
        for offset in range(0, len(audio), 320):
            await client.send_audio(audio[offset : offset + 320])
            await asyncio.sleep(0.02)
        while True:
            await client.send_audio(silence(0.02))
            await asyncio.sleep(0.02)


async def test_sessions_spread_over_two_backends_and_new_ones_survive_one_being_killed(tmp_path: Path) -> None:
    async with pool(tmp_path) as lb:
        (a, b), url, trust = lb.backends, lb.url, lb.trust
        clients = [await open_session(url, trust) for _ in range(4)]
        assert (a.sessions(), b.sessions()) == (2, 2), "least_conn spread the sessions"
        a.process.kill()  # a crash, not a drain: its sessions are lost with it
        a.process.wait(10)
        # The proxy closes the killed backend's sessions: wait for the first two closes.
        waits = [asyncio.create_task(client.wait_closed(15)) for client in clients]
        for closed, next_close in enumerate(asyncio.as_completed(waits, timeout=15), start=1):
            await next_close
            if closed == 2:
                break
        for wait in waits:
            wait.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
        survivors = [c for c in clients if c.close_code is None]
        assert len(survivors) == 2, "the killed backend's sessions ended, the other's did not"
        # New sessions still open: nginx finds the dead backend refusing and tries the other.
        fresh = [await open_session(url, trust) for _ in range(4)]
        assert b.sessions() == 6
        speaking = asyncio.create_task(speak(fresh[0]))
        metrics = await fresh[0].wait_for_event(lambda e: e.get("type") == "metrics", 15)
        assert metrics["first_audio_sent_ms"] is not None, "a whole turn on the surviving backend"
        for client in survivors + fresh:
            await client.close()
        await speaking


async def test_a_draining_backend_finishes_the_turn_then_hands_the_session_to_the_other(tmp_path: Path) -> None:
    async with pool(tmp_path, "--scripted-reply-ms", "2500", "--drain-timeout-s", "15") as lb:
        (a, b), url, trust = lb.backends, lb.url, lb.trust
        client = await open_session(url, trust)
        holder, other = (a, b) if a.sessions() == 1 else (b, a)
        speaking = asyncio.create_task(speak(client))
        await client.wait_for_event(lambda e: e.get("type") == "turn" and e.get("state") == "responding", 15)
        holder.process.send_signal(signal.SIGTERM)
        await until(lambda: holder.ready()[0] == 503, 10, "the draining backend to turn unready")
        # While it drains, new sessions open on the other backend (nginx retries its 503).
        newcomer = await open_session(url, trust)
        assert other.sessions() == 1
        # The turn in flight plays out whole; only then is the session closed, with the hint.
        metrics = await client.wait_for_event(lambda e: e.get("type") == "metrics", 15)
        assert not metrics["interrupted"] and metrics["error"] is None
        assert await client.wait_closed(20) == 1001
        assert client.close_reason == RECONNECT_REASON
        await speaking
        again = await connect_with_retry(
            lambda: PresenceClient(url, token=token(), ssl_context=trust), client.close_code, client.close_reason
        )
        assert other.sessions() == 2, "the reconnect landed on the backend that is not draining"
        assert await asyncio.to_thread(holder.process.wait, 15) == 0 or holder.process.returncode == -signal.SIGTERM
        await again.close()
        await newcomer.close()


async def test_presence_talk_reconnects_to_the_other_backend_and_finishes_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with pool(tmp_path, "--scripted-reply-ms", "800") as lb:
        (a, b), url = lb.backends, lb.url
        monkeypatch.setenv("SSL_CERT_FILE", str(lb.cert))  # `presence talk` trusts it as OpenSSL's default
        rate = 16_000
        utterances = [speech_like(0.6), silence(3.5), speech_like(0.6), silence(0.5)]
        wav = tmp_path / "two-questions.wav"
        write_wav(wav, np.concatenate(utterances), rate)
        talking = asyncio.create_task(talk(url, wav, tmp_path / "out", settle_s=8, token=token()))
        await until(lambda: a.sessions() + b.sessions() == 1, 15, "talk's session to open (its hello answered)")
        holder, other = (a, b) if a.sessions() == 1 else (b, a)
        holder.process.send_signal(signal.SIGTERM)
        result = await asyncio.wait_for(talking, 40)
        assert result.sessions == 2, "talk reopened its session once"
        session_ids = json.loads((tmp_path / "out" / "turns.json").read_text())["session_ids"]
        answered = [t for t in result.turns if t["agent_text"]]
        assert any(t["session_id"] == session_ids[1] for t in answered), "the other backend answered the rest"
        assert other.process.poll() is None
