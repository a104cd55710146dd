"""Fault injection (issue #12): a frozen server, clients that vanish, an engine that raises."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from presence.client.connection import PresenceClient
from presence.engines.base import SessionOptions
from presence.engines.scripted import Script, ScriptedEngine, ScriptedSession
from presence.testing import faults as faults
from presence.testing import probes as probes
from presence.testing.servers import ServerProcess
from presence.testing.turns import speak_turn
from tests.conftest import ServerFactory
from tests.reliability.conftest import ServeFactory

pytestmark = pytest.mark.reliability

#: An engine failure must reach the user well before the 30 s reply watchdog.
PROMPT_S = 5.0


async def test_a_server_paused_3_s_mid_reply_then_completes_the_turn_or_reports_an_error(
    serve: ServeFactory,
) -> None:
    # A reply longer than the pause, paced in real time, so the freeze lands inside it.
    with serve("--scripted-reply-ms", "4000", "--max-lead-ms", "0") as server:
        probe = await faults.pause_mid_reply(server, pause_s=3.0)
    assert probe.passed, probe.summary()


async def test_sessions_whose_clients_drop_tcp_mid_turn_are_released(shared_server: ServerProcess) -> None:
    probe = await faults.drop_mid_turn(shared_server, clients=5)
    assert probe.passed, probe.summary()


async def _crash(turn_id: int, text: str, started: float) -> None:
    raise RuntimeError("synthesis crashed inside the reply task")


class RaisingEngine(ScriptedEngine):
    """The scripted engine, except that every reply task dies with an exception before any audio."""

    async def open_session(self, options: SessionOptions) -> ScriptedSession:
        session = await super().open_session(options)
        session._speak = _crash  # type: ignore[method-assign]  # replaces the reply task's body
        return session


async def test_an_engine_that_raises_in_its_reply_task_gets_the_user_an_error_event_promptly(
    server_factory: ServerFactory,
) -> None:
    async with server_factory(engine=RaisingEngine(Script()), confirm_ms=300, reply_timeout_s=30) as srv:
        client = PresenceClient(srv.url)
        await client.connect()
        turn = asyncio.create_task(speak_turn(client, probes.good_speech(), limit_s=PROMPT_S + 5))
        try:
            await client.wait_for_event(lambda b: b.get("type") == "turn" and b.get("state") == "responding", 5)
            confirmed = time.monotonic()
            error = await client.wait_for_event(lambda b: b.get("type") == "error", PROMPT_S)
            assert time.monotonic() - confirmed < PROMPT_S
            assert error.get("turn_id") == 1
            record = await client.wait_for_event(lambda b: b.get("type") == "metrics", PROMPT_S)
        finally:
            turn.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await turn
        assert record.get("error"), record
        assert record.get("first_audio_sent_ms") is None, "the turn record claims audio it never sent"
        assert not any(frame.data for _, frame in client.received.audio)
        await client.close()
