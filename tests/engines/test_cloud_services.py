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

from presence.engines.base import EngineError, ReplyEnd, SessionOptions
from presence.engines.gemini import GeminiLiveEngine
from presence.engines.openai_realtime import OpenAIRealtimeEngine
from presence.testing.fakes import gemini_live_server as gemini_fake
from presence.testing.fakes import openai_realtime_server as openai_fake
from presence.testing.fakes.drive import one_turn_through_presence, speak_turn, until_reply_end
from tests.conftest import ServerFactory, silence, speech_like


@dataclass
class Service:
    """One cloud service's fake, an engine for it, and what its SDK logs at DEBUG."""

    fake: Any
    key: str
    make_engine: Callable[[], GeminiLiveEngine | OpenAIRealtimeEngine]
    auth_header: str  # the request header naming the key, as the SDK logs it
    reply: str


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
            )


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
