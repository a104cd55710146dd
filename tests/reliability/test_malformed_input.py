"""The malformed-input table against a real server process: every case closes with its documented
code, and a well-behaved session alongside keeps its normal turn latency.

The cases are tests/server/test_close_codes.py's table plus the two from issue #12 (integers
past Python's 4300-digit limit, which the JSON parser rejects with a plain ValueError).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
import websockets

from presence.client.connection import PresenceClient, client_hello
from presence.protocol.frames import FrameType
from presence.testing.probes import good_speech, wait_until
from presence.testing.servers import ServerProcess
from presence.testing.turns import speak_turn
from presence.testing.wire import HELLO, open_raw, sessions_active
from tests.server.test_close_codes import CASES, raw_header

pytestmark = pytest.mark.reliability

HUGE = "9" * 5000


def _raw_frame(frame_type: FrameType, payload: str) -> bytes:
    data = payload.encode()
    return raw_header(frame_type, len(data)) + data


_HUGE_RATE_HELLO = json.dumps({**client_hello(), "audio_in": [{"codec": "pcm_s16le", "sample_rate": 0}]}).replace(
    '"sample_rate": 0', f'"sample_rate": {HUGE}'
)

ISSUE_CASES: list[tuple[str, list[Any], int, str]] = [
    ("a 5000-digit sample rate in the hello", [_raw_frame(FrameType.CLIENT_HELLO, _HUGE_RATE_HELLO)], 1007, ""),
    ("a 5000-digit integer in an event", [HELLO, _raw_frame(FrameType.EVENT, f'{{"type":"x","n":{HUGE}}}')], 1007, ""),
]
# Named as in tests/server/test_close_codes.py on main, which adds the same two cases: no duplicates after a merge.
ALL_CASES = CASES + [case for case in ISSUE_CASES if case[0] not in {c[0] for c in CASES}]


@pytest.fixture
def server(shared_server: ServerProcess) -> ServerProcess:
    return shared_server


async def close_code_after(url: str, messages: list[bytes | str], limit_s: float = 10) -> tuple[int | None, str]:
    """Send the messages on a raw session, then wait for the server to close; (code, reason)."""
    ws = await open_raw(url)
    try:
        for message in messages:
            await ws.send(message)
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), limit_s)
    finally:
        await ws.close()
    return ws.close_code, ws.close_reason or ""


@pytest.mark.parametrize(("name", "messages", "code", "reason"), ALL_CASES, ids=[c[0] for c in ALL_CASES])
async def test_malformed_input_closes_with_its_documented_code(
    server: ServerProcess, documented_codes: frozenset[int], name: str, messages: list[Any], code: int, reason: str
) -> None:
    got_code, got_reason = await close_code_after(server.url, messages)
    assert code in documented_codes
    assert (got_code, name) == (code, name)
    assert reason.lower() in got_reason.lower()
    assert server.alive()


async def test_a_session_alongside_every_malformed_input_keeps_its_normal_turn_latency(server: ServerProcess) -> None:
    good = PresenceClient(server.url)
    await good.connect()
    baseline = await speak_turn(good, good_speech(1))
    assert baseline.completed, baseline
    assert baseline.first_audio_ms is not None
    closed: list[int | None] = []
    stop = asyncio.Event()

    async def storm() -> None:
        while not stop.is_set():
            for _, messages, _, _ in ALL_CASES:
                code, _ = await close_code_after(server.url, messages, limit_s=5)
                closed.append(code)

    storms = [asyncio.create_task(storm(), name=f"storm-{i}") for i in range(3)]
    try:
        during = await speak_turn(good, good_speech(2))
    finally:
        stop.set()
        await asyncio.gather(*storms)
    await good.close()
    assert during.completed, during
    assert during.first_audio_ms is not None
    # Loose on purpose: two shared cores; what must not happen is a stall of the other session.
    assert during.first_audio_ms < max(3 * baseline.first_audio_ms, baseline.first_audio_ms + 250), (
        baseline.first_audio_ms,
        during.first_audio_ms,
    )
    assert len(closed) >= len(ALL_CASES) and None not in closed, "every malformed session was closed by the server"

    async def released() -> bool:
        return await sessions_active(server.port) == 0

    assert await wait_until(released, 5) is not None, "every session was released"
