"""What both cloud engines must do, each through its real SDK against its local fake: recover
from an unreachable service, keep the API key out of every log line and output, and answer
through a real presence session with moving lips. (Service-specific behaviour stays in
tests/gemini and tests/openai_rt.)"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from presence.engines.base import EngineError, ReplyEnd, SessionOptions, Transcript
from presence.engines.gemini import MODEL_RATE as GEMINI_RATE
from presence.engines.gemini import GeminiLiveEngine
from presence.engines.openai_realtime import MODEL_RATE as OPENAI_RATE
from presence.engines.openai_realtime import OpenAIRealtimeEngine
from presence.media import AudioChunk, InputAudio
from presence.testing.fakes import gemini_live_server as gemini_fake
from presence.testing.fakes import openai_realtime_server as openai_fake
from presence.testing.fakes.drive import one_turn_through_presence, open_connected, speak_turn, until_reply_end
from tests.conftest import ServerFactory, silence, speech_like


@dataclass
class Service:
    """One cloud service's fake, an engine for it, and what its SDK logs at DEBUG."""

    fake: Any
    key: str
    make_engine: Callable[[], GeminiLiveEngine | OpenAIRealtimeEngine]
    auth_header: str  # the request header naming the key, as the SDK logs it
    reply: str
    rate: int  # the model's output rate
    input_seconds: Callable[[], float]  # user audio the fake received
    tool_error_returned: Callable[[], bool]  # the engine answered the fake's tool call with an error


def _gemini_tool_error(fake: gemini_fake.FakeGeminiLive) -> bool:
    response = gemini_fake._get(fake.recorded.tool_responses[0], "function_responses")[0]
    return bool(response["id"] == "call-1" and response["response"]["error"])


@pytest.fixture(params=["gemini", "openai"])
async def service(request: pytest.FixtureRequest) -> AsyncIterator[Service]:
    if request.param == "gemini":
        key = "AIza-presence-test-SECRET-0123456789"
        async with gemini_fake.FakeGeminiLive(gemini_fake.FakeModel()).running() as gemini:
            yield Service(
                gemini,
                key,
                lambda: GeminiLiveEngine(
                    key, persona="Be brief.", base_url=gemini.base_url, ssl_context=gemini.client_ssl
                ),
                "x-goog-api-key",
                gemini_fake.REPLY,
                GEMINI_RATE,
                lambda: float(gemini.recorded.audio_samples / 16_000),
                lambda: bool(
                    gemini_fake._get(gemini.recorded.tool_responses[0], "function_responses")[0]["response"]["error"]
                ),
            )
    else:
        key = "sk-presence-test-SECRET-0123456789"
        async with openai_fake.FakeRealtimeServer(openai_fake.FakeModel()).running() as openai:
            yield Service(
                openai,
                key,
                lambda: OpenAIRealtimeEngine(key, persona="Be brief.", base_url=openai.base_url),
                "authorization",
                openai_fake.REPLY,
                OPENAI_RATE,
                lambda: float(openai.recorded.appended_samples / OPENAI_RATE),
                lambda: str(openai.recorded.tool_outputs[0]["output"]).startswith('{"error"'),
            )


async def test_a_confirmed_turn_streams_the_models_spoken_reply_and_both_transcripts(service: Service) -> None:
    session = await open_connected(service.make_engine())
    await speak_turn(session, 1, seconds=0.5)
    outputs = await until_reply_end(session, 1)
    await session.close()
    audio = [o for o in outputs if isinstance(o, AudioChunk)]
    assert audio and all(o.turn_id == 1 and o.sample_rate == service.rate for o in audio)
    assert sum(len(o.samples) for o in audio) == service.fake.model.reply_ms * service.rate // 1000
    finals = {o.role: o.text for o in outputs if isinstance(o, Transcript) and o.final}
    assert finals == {"user": "0.5 seconds of speech", "agent": service.reply}
    assert outputs[-1] == ReplyEnd(1, "done")


async def test_an_unreachable_service_fails_turns_at_once_then_recovers_with_backoff(service: Service) -> None:
    service.fake.model.refuse_connections = 3
    session: Any = await service.make_engine().open_session(SessionOptions("s1"))
    await speak_turn(session, 1)
    first = await until_reply_end(session, 1)
    assert [o.code for o in first if isinstance(o, EngineError)] == ["engine_unavailable"]
    await asyncio.wait_for(session._connected.wait(), 10)
    await speak_turn(session, 2)
    second = await until_reply_end(session, 2)
    await session.close()
    assert session.connect_failures == 3 and second[-1] == ReplyEnd(2, "done")


async def test_the_api_key_appears_in_no_log_line_and_no_output(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    service.fake.model.refuse_connections, service.fake.model.fail = 1, "close"
    session: Any = await service.make_engine().open_session(SessionOptions("s1"))
    await speak_turn(session, 1)
    outputs = await until_reply_end(session, 1)
    await asyncio.wait_for(session._connected.wait(), 10)
    await speak_turn(session, 2)
    outputs += await until_reply_end(session, 2)
    await session.close()
    ours = [r for r in caplog.records if not r.name.startswith("websockets.server")]  # the fake's own logs
    assert any(r.name.startswith("presence") for r in ours), "the failures were logged"
    assert any(service.auth_header in r.getMessage().lower() for r in ours), "headers were logged, at DEBUG"
    assert not any(service.key in r.getMessage() for r in ours)
    assert not any(service.key in repr(o) for o in outputs)


async def test_through_a_presence_session_the_client_hears_the_reply_with_moving_lips(
    service: Service, server_factory: ServerFactory
) -> None:
    engine = service.make_engine()
    audio = np.concatenate([speech_like(0.6), silence(1.0)])
    async with server_factory(engine=engine, confirm_ms=320) as srv:
        record, client = await one_turn_through_presence(srv.url, engine, audio)
    assert record["user_text"].endswith("seconds of speech")
    assert record["agent_text"] == service.reply and record["error"] is None
    assert record["reply_end_sample"] - record["reply_start_sample"] >= 0.6 * 24_000
    weights = np.concatenate([np.frombuffer(f.weights, np.uint8) for _, f in client.received.animation])
    assert weights.max() > 100, "the audio-driven animator opened the mouth"


async def test_audio_before_the_speech_onset_is_sent_as_pre_roll_and_silence_after_the_turn_is_not(
    service: Service,
) -> None:
    session = await open_connected(service.make_engine())
    for offset in range(0, 16_000, 320):  # a second of room noise before anyone speaks
        await session.push_audio(InputAudio(silence(0.02), offset))
    await speak_turn(session, 1, seconds=0.5)
    await until_reply_end(session, 1)
    for offset in range(0, 16_000, 320):
        await session.push_audio(InputAudio(silence(0.02), offset))
    await session.close()
    assert 0.79 <= service.input_seconds() <= 0.81, "0.5 s of speech plus the 0.3 s pre-roll, nothing else"


async def test_a_tool_call_gets_an_error_result_and_the_turn_still_gets_its_reply(service: Service) -> None:
    service.fake.model.fail = "tool"
    session = await open_connected(service.make_engine())
    await speak_turn(session, 1)
    outputs = await until_reply_end(session, 1)
    await session.close()
    assert service.tool_error_returned()
    assert any(isinstance(o, AudioChunk) for o in outputs) and outputs[-1] == ReplyEnd(1, "done")
    assert not any(isinstance(o, EngineError) for o in outputs)
