"""A stuck or failing engine ends the turn with an error; the session stays usable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import websockets

from presence.client.connection import PresenceClient
from presence.engines.base import EngineError, EngineOutput, ReplyEnd, SessionOptions
from presence.engines.scripted import Script, ScriptedEngine, ScriptedSession
from tests.conftest import ServerFactory, silence, speech_like


async def speak(client: PresenceClient, audio: np.ndarray) -> None:
    """Stream in real time; stop quietly if the server closes the session meanwhile."""
    for offset in range(0, len(audio), 320):
        try:
            await client.send_audio(audio[offset : offset + 320])
        except websockets.ConnectionClosed:
            return
        await asyncio.sleep(0.02)


async def test_a_reply_that_never_ends_times_out_with_an_error_event(server_factory: ServerFactory) -> None:
    stuck = ScriptedEngine(Script(think_ms=60_000))
    async with server_factory(engine=stuck, reply_timeout_s=0.4) as srv:
        client = PresenceClient(srv.url)
        await client.connect()
        for turn in (1, 2):
            await speak(client, np.concatenate([speech_like(0.5, seed=turn), silence(0.8)]))
            error = await client.wait_for_event(lambda b, t=turn: b.get("type") == "error" and b["turn_id"] == t, 5)
            assert error["code"] == "engine_timeout"
            record = await client.wait_for_event(lambda b, t=turn: b.get("type") == "metrics" and b["turn_id"] == t, 5)
            assert "did not finish" in record["error"]
        assert client.close_code is None, "the session survived both failures"
        assert [i.turn_id for i in stuck.sessions[0].interrupts] == [1, 2], "the engine was told to stop"
        await client.close()


class FailingSession(ScriptedSession):
    """Fails the first turn's reply inside the engine, answers later ones normally."""

    async def outputs(self) -> AsyncIterator[EngineOutput]:
        async for item in super().outputs():
            if item.turn_id == 1:
                if isinstance(item, ReplyEnd):
                    yield EngineError("synthesis crashed", turn_id=1)
                    yield ReplyEnd(1, "error")
                continue
            yield item


class FailingEngine(ScriptedEngine):
    async def open_session(self, options: SessionOptions) -> ScriptedSession:
        return FailingSession(self.script, self.clock, self.sessions)


async def test_an_engine_error_ends_that_turn_and_the_next_turn_works(server_factory: ServerFactory) -> None:
    async with server_factory(engine=FailingEngine(Script(reply_ms=300))) as srv:
        client = PresenceClient(srv.url)
        await client.connect()
        await speak(client, np.concatenate([speech_like(0.5), silence(0.8)]))
        error = await client.wait_for_event(lambda b: b.get("type") == "error", 5)
        assert error == {"type": "error", "code": "engine_error", "message": "synthesis crashed", "turn_id": 1}
        await client.wait_for_event(lambda b: b.get("type") == "metrics" and b["turn_id"] == 1, 5)
        await speak(client, np.concatenate([speech_like(0.5, seed=2), silence(0.8)]))
        await client.wait_for_event(lambda b: b.get("type") == "metrics" and b["turn_id"] == 2, 5)
        assert any(frame.timestamp >= 0 and frame.data for _, frame in client.received.audio)
        await client.close()


class DyingSession(ScriptedSession):
    """The engine session reports a fatal failure on the first turn."""

    async def outputs(self) -> AsyncIterator[EngineOutput]:
        async for item in super().outputs():
            if isinstance(item, ReplyEnd):
                yield EngineError("model process exited", turn_id=item.turn_id, fatal=True)
                return
            yield item


class DyingEngine(ScriptedEngine):
    async def open_session(self, options: SessionOptions) -> ScriptedSession:
        return DyingSession(self.script, self.clock, self.sessions)


async def test_a_fatal_engine_failure_closes_only_that_session_with_1011_after_the_error_event(
    server_factory: ServerFactory,
) -> None:
    async with server_factory(engine=DyingEngine(Script(reply_ms=200))) as srv:
        client = PresenceClient(srv.url)
        await client.connect()
        await speak(client, np.concatenate([speech_like(0.5), silence(0.8)]))
        assert await client.wait_closed() == 1011
        assert "model process exited" in client.close_reason
        assert client.received.events_of("error")[0]["message"] == "model process exited"
        other = PresenceClient(srv.url)
        await other.connect()
        await other.close()


class DyingUncleanSession(DyingSession):
    """A fatal failure, and then closing the engine session fails as well."""

    async def close(self) -> None:
        await super().close()
        raise RuntimeError("the model process could not be reaped")


class DyingUncleanEngine(ScriptedEngine):
    async def open_session(self, options: SessionOptions) -> ScriptedSession:
        return DyingUncleanSession(self.script, self.clock, self.sessions)


async def test_a_session_whose_close_fails_still_sends_its_close_frame_and_is_released(
    server_factory: ServerFactory,
) -> None:
    async with server_factory(engine=DyingUncleanEngine(Script(reply_ms=200))) as srv:
        client = PresenceClient(srv.url)
        await client.connect()
        await speak(client, np.concatenate([speech_like(0.5), silence(0.8)]))
        assert await client.wait_closed() == 1011, "the close frame went out although close() raised"
        assert "model process exited" in client.close_reason
        other = PresenceClient(srv.url)  # the server and its admission are unaffected
        await other.connect()
        await other.close()
