"""The OpenAI Realtime engine through the real ``openai`` SDK against a local fake of the service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import numpy as np
import pytest

from presence.client.connection import PresenceClient
from presence.engines.base import (
    AudioChunk,
    EngineError,
    InputAudio,
    Interrupt,
    ReplyEnd,
    SessionOptions,
    Transcript,
)
from presence.engines.openai_realtime import MODEL_RATE, OpenAIRealtimeEngine, OpenAIRealtimeSession
from tests.conftest import ServerFactory, silence, speech_like
from tests.fakes.drive import speak_turn, until_reply_end
from tests.fakes.openai_realtime_server import REPLY, FakeModel, FakeRealtimeServer

KEY = "sk-presence-test-SECRET-0123456789"


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
async def fake() -> AsyncIterator[FakeRealtimeServer]:
    async with FakeRealtimeServer(FakeModel()).running() as server:
        yield server


def engine_for(fake: FakeRealtimeServer) -> OpenAIRealtimeEngine:
    return OpenAIRealtimeEngine(
        KEY, model="gpt-realtime-2.1", voice="marin", persona="Be brief.", base_url=fake.base_url
    )


async def connected(engine: OpenAIRealtimeEngine) -> OpenAIRealtimeSession:
    session = await engine.open_session(SessionOptions("s1"))
    await asyncio.wait_for(session._connected.wait(), 10)
    return session


async def test_a_confirmed_turn_streams_the_models_spoken_reply_and_both_transcripts(
    fake: FakeRealtimeServer,
) -> None:
    session = await connected(engine_for(fake))
    await speak_turn(session, 1, seconds=0.5)
    outputs = await until_reply_end(session, 1)
    await session.close()
    audio = [o for o in outputs if isinstance(o, AudioChunk)]
    assert audio and all(o.turn_id == 1 and o.sample_rate == MODEL_RATE for o in audio)
    assert sum(len(o.samples) for o in audio) == fake.model.reply_ms * MODEL_RATE // 1000
    finals = {o.role: o.text for o in outputs if isinstance(o, Transcript) and o.final}
    assert finals == {"user": "0.5 seconds of speech", "agent": REPLY}
    assert outputs[-1] == ReplyEnd(1, "done")
    update = fake.recorded.session_updates[0]
    assert update["instructions"] == "Be brief." and update["audio"]["output"]["voice"] == "marin"
    assert update["audio"]["input"]["turn_detection"] is None, "presence's turn-taking drives the model"
    assert fake.recorded.authorizations == [f"Bearer {KEY}"]
    assert fake.recorded.events[-3:] == ["input_audio_buffer.append", "input_audio_buffer.commit", "response.create"]


async def test_audio_before_the_speech_onset_is_sent_as_pre_roll_and_silence_after_the_turn_is_not(
    fake: FakeRealtimeServer,
) -> None:
    session = await connected(engine_for(fake))
    for offset in range(0, 16_000, 320):  # a second of room noise before anyone speaks
        await session.push_audio(InputAudio(silence(0.02), offset))
    await speak_turn(session, 1, seconds=0.5)
    await until_reply_end(session, 1)
    for offset in range(0, 16_000, 320):
        await session.push_audio(InputAudio(silence(0.02), offset))
    await session.close()
    sent_s = fake.recorded.appended_samples / MODEL_RATE
    assert 0.79 <= sent_s <= 0.81, "0.5 s of speech plus the 0.3 s pre-roll, nothing else"


async def test_a_barge_in_cancels_the_response_and_truncates_it_where_the_user_stopped_hearing(
    fake: FakeRealtimeServer,
) -> None:
    fake.model.realtime, fake.model.reply_ms = True, 3000
    session = await connected(engine_for(fake))
    await speak_turn(session, 1)
    heard = 0
    async for item in session.outputs():
        if isinstance(item, AudioChunk):
            heard += len(item.samples)
            if heard >= MODEL_RATE // 2:
                break
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


async def test_a_tool_call_gets_an_error_result_and_the_turn_still_gets_its_reply(fake: FakeRealtimeServer) -> None:
    fake.model.fail = "tool"
    session = await connected(engine_for(fake))
    await speak_turn(session, 1)
    outputs = await until_reply_end(session, 1)
    await session.close()
    assert fake.recorded.tool_outputs[0]["output"].startswith('{"error"')
    assert any(isinstance(o, AudioChunk) for o in outputs) and outputs[-1] == ReplyEnd(1, "done")
    assert not any(isinstance(o, EngineError) for o in outputs)


async def test_an_error_mid_reply_ends_that_turn_with_one_error_and_the_next_turn_works(
    fake: FakeRealtimeServer,
) -> None:
    fake.model.fail = "error"
    session = await connected(engine_for(fake))
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
    session = await connected(engine_for(fake))
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


async def test_an_unreachable_service_fails_turns_at_once_then_recovers_with_backoff(
    fake: FakeRealtimeServer,
) -> None:
    fake.model.refuse_connections = 3
    session = await engine_for(fake).open_session(SessionOptions("s1"))
    await speak_turn(session, 1)
    first = await until_reply_end(session, 1)
    assert [o.code for o in first if isinstance(o, EngineError)] == ["engine_unavailable"]
    await asyncio.wait_for(session._connected.wait(), 10)
    await speak_turn(session, 2)
    second = await until_reply_end(session, 2)
    await session.close()
    assert session.connect_failures == 3 and second[-1] == ReplyEnd(2, "done")


async def test_the_api_key_appears_in_no_log_line_and_no_output(
    fake: FakeRealtimeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.model.refuse_connections, fake.model.fail = 1, "close"
    session = await engine_for(fake).open_session(SessionOptions("s1"))
    await speak_turn(session, 1)
    outputs = await until_reply_end(session, 1)
    await asyncio.wait_for(session._connected.wait(), 10)
    await speak_turn(session, 2)
    outputs += await until_reply_end(session, 2)
    await session.close()
    ours = [r for r in caplog.records if not r.name.startswith("websockets.server")]  # the fake's own logs
    assert any(r.name.startswith("presence") for r in ours), "the failures were logged"
    assert any("Authorization" in r.getMessage() for r in ours), "headers were logged, at DEBUG"
    assert not any(KEY in r.getMessage() for r in ours)
    assert not any(KEY in repr(o) for o in outputs)


async def test_through_a_presence_session_the_client_hears_the_reply_with_moving_lips(
    fake: FakeRealtimeServer, server_factory: ServerFactory
) -> None:
    engine = engine_for(fake)
    async with server_factory(engine=engine, confirm_ms=320) as srv:
        client = PresenceClient(srv.url)
        await client.connect()
        await asyncio.wait_for(engine.sessions[0]._connected.wait(), 10)
        audio = np.concatenate([speech_like(0.6), silence(0.8)])
        for offset in range(0, len(audio), 320):
            await client.send_audio(audio[offset : offset + 320])
            await asyncio.sleep(0.02)
        record = await client.wait_for_event(lambda b: b.get("type") == "metrics", 10)
        await client.close()
    assert record["user_text"] == "0.6 seconds of speech" or record["user_text"].endswith("seconds of speech")
    assert record["agent_text"] == REPLY and record["error"] is None
    reply_samples = record["reply_end_sample"] - record["reply_start_sample"]
    assert reply_samples >= 0.6 * 24_000
    weights = np.concatenate([np.frombuffer(f.weights, np.uint8) for _, f in client.received.animation])
    assert weights.max() > 100, "the audio-driven animator opened the mouth"
