"""The OpenAI Realtime engine through the real ``openai`` SDK against a local fake of the service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from presence.engines.base import EngineError, Interrupt, ReplyEnd
from presence.engines.openai_realtime import MODEL_RATE, OpenAIRealtimeEngine
from presence.media import AudioChunk
from presence.testing.fakes.drive import hear, open_connected, speak_turn, until_reply_end
from presence.testing.fakes.openai_realtime_server import FakeModel, FakeRealtimeServer

KEY = "sk-presence-test-SECRET-0123456789"


@pytest.fixture
async def fake() -> AsyncIterator[FakeRealtimeServer]:
    async with FakeRealtimeServer(FakeModel()).running() as server:
        yield server


def engine_for(fake: FakeRealtimeServer) -> OpenAIRealtimeEngine:
    return OpenAIRealtimeEngine(
        KEY, model="gpt-realtime-2.1", voice="marin", persona="Be brief.", base_url=fake.base_url
    )


async def test_a_turn_configures_the_session_and_commits_the_audio(fake: FakeRealtimeServer) -> None:
    """(The reply itself: tests/engines/test_cloud_services.py.)"""
    session = await open_connected(engine_for(fake))
    await speak_turn(session, 1, seconds=0.5)
    await until_reply_end(session, 1)
    await session.close()
    update = fake.recorded.session_updates[0]
    assert update["instructions"] == "Be brief." and update["audio"]["output"]["voice"] == "marin"
    assert update["audio"]["input"]["turn_detection"] is None, "presence's turn-taking drives the model"
    assert fake.recorded.authorizations == [f"Bearer {KEY}"]
    assert fake.recorded.events[-3:] == ["input_audio_buffer.append", "input_audio_buffer.commit", "response.create"]


async def test_a_barge_in_cancels_the_response_and_truncates_it_where_the_user_stopped_hearing(
    fake: FakeRealtimeServer,
) -> None:
    fake.model.realtime, fake.model.reply_ms = True, 3000
    session = await open_connected(engine_for(fake))
    await speak_turn(session, 1)
    await hear(session, MODEL_RATE // 2)
    await session.interrupt(Interrupt(1, 9_600))  # the user heard 400 ms of it
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while not (fake.recorded.cancels and fake.recorded.truncations):  # the service has heard both
        assert loop.time() < deadline, "the cancel and the truncation never reached the service"
        await asyncio.sleep(0.01)
    await session.close()
    assert fake.recorded.cancels == 1
    truncation = fake.recorded.truncations[0]
    assert truncation["audio_end_ms"] == 400 and truncation["content_index"] == 0
    assert truncation["item_id"].startswith("item_")


async def test_an_error_mid_reply_ends_that_turn_with_one_error_and_the_next_turn_works(
    fake: FakeRealtimeServer,
) -> None:
    fake.model.fail = "error"
    session = await open_connected(engine_for(fake))
    await speak_turn(session, 1)
    first = await until_reply_end(session, 1)
    fake.model.fail = None
    await speak_turn(session, 2)
    second = await until_reply_end(session, 2)
    await session.close()
    errors = [o for o in first if isinstance(o, EngineError)]
    assert len(errors) == 1 and errors[0].turn_id == 1 and "server had an error" in errors[0].message
    assert first[-1] == ReplyEnd(1, "error")
    assert second[-1] == ReplyEnd(2, "done") and any(isinstance(o, AudioChunk) for o in second)


async def test_a_dropped_connection_fails_the_turn_and_the_engine_reconnects(fake: FakeRealtimeServer) -> None:
    fake.model.fail = "close"
    session = await open_connected(engine_for(fake))
    await speak_turn(session, 1)
    first = await until_reply_end(session, 1)
    fake.model.fail = None
    await asyncio.wait_for(session._connected.wait(), 10)
    await speak_turn(session, 2)
    second = await until_reply_end(session, 2)
    await session.close()
    assert [o.code for o in first if isinstance(o, EngineError)] == ["engine_disconnected"]
    assert first[-1] == ReplyEnd(1, "error")
    assert second[-1] == ReplyEnd(2, "done")
    assert fake.recorded.connections == 2
