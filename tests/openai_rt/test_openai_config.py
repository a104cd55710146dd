"""OpenAI Realtime through the real ``openai`` SDK against the strict fake: a refused
configuration fails the session once, and a barge-in never trips over the cancel race."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from presence.engines.base import EngineError, EngineOutput, Interrupt, ReplyEnd, SessionOptions, Transcript
from presence.engines.cloud import MISCONFIGURED, EngineMisconfigured
from presence.engines.openai_realtime import DEFAULT_MODEL, MODEL_RATE, OpenAIRealtimeEngine, OpenAIRealtimeSession
from presence.testing.fakes.drive import speak_turn, until_reply_end
from presence.testing.fakes.openai_realtime_server import FakeModel, FakeRealtimeServer

KEY = "sk-presence-test-SECRET-0123456789"
RETIRED = "gpt-4o-realtime-preview"


@pytest.fixture
async def fake() -> AsyncIterator[FakeRealtimeServer]:
    async with FakeRealtimeServer(FakeModel(api_keys=(KEY,))).running() as server:
        yield server


def engine_for(
    fake: FakeRealtimeServer, model: str = DEFAULT_MODEL, key: str = KEY, transcription: str = "gpt-live-transcribe"
) -> OpenAIRealtimeEngine:
    return OpenAIRealtimeEngine(key, model=model, base_url=fake.base_url, transcription_model=transcription)


async def first_output(session: OpenAIRealtimeSession) -> EngineOutput:
    async def first() -> EngineOutput:
        async for item in session.outputs():
            return item
        raise AssertionError("the outputs ended without a word")

    return await asyncio.wait_for(first(), 10)


async def refused(session: OpenAIRealtimeSession) -> EngineError:
    """The session's one error, once its connection loop has ended for good."""
    error = await first_output(session)
    assert session._runner is not None
    await asyncio.wait_for(session._runner, 10)  # no retry, no backoff
    assert isinstance(error, EngineError) and error.fatal and error.code == MISCONFIGURED
    return error


async def test_an_unknown_model_fails_the_session_once_naming_it_with_the_services_words(
    fake: FakeRealtimeServer,
) -> None:
    session = await engine_for(fake, model=RETIRED).open_session(SessionOptions("s1"))
    error = await refused(session)
    await speak_turn(session, 1)
    outputs = await until_reply_end(session, 1)
    await session.close()
    assert RETIRED in error.message and "does not exist or you do not have access to it" in error.message
    assert fake.recorded.connections == 1 and fake.recorded.errors_sent == ["model_not_found"]
    assert [o.code for o in outputs if isinstance(o, EngineError)] == [MISCONFIGURED], "later turns say why too"


async def test_a_refused_key_fails_the_session_with_the_services_words_and_no_retry(fake: FakeRealtimeServer) -> None:
    session = await engine_for(fake, key="sk-revoked").open_session(SessionOptions("s1"))
    error = await refused(session)
    await session.close()
    assert "HTTP 401" in error.message and "Incorrect API key provided" in error.message
    assert DEFAULT_MODEL in error.message and "sk-revoked" not in error.message
    assert fake.recorded.connections == 0, "refused at the handshake"


async def test_a_rejected_session_update_fails_the_session_with_the_services_words(fake: FakeRealtimeServer) -> None:
    session = await engine_for(fake, transcription="gpt-4o-mini-transcribe-2024").open_session(SessionOptions("s1"))
    error = await refused(session)
    await session.close()
    assert "invalid_value" in error.message and "gpt-4o-mini-transcribe-2024" in error.message


async def test_the_session_update_names_the_current_transcription_model(fake: FakeRealtimeServer) -> None:
    session = await engine_for(fake).open_session(SessionOptions("s1"))
    await asyncio.wait_for(session._connected.wait(), 10)
    await session.close()
    update = fake.recorded.session_updates[0]
    assert update["model"] == "gpt-realtime-2.1"
    assert update["audio"]["input"]["transcription"] == {"model": "gpt-live-transcribe"}
    assert fake.recorded.models_asked == ["gpt-realtime-2.1"]


async def test_a_barge_in_after_generation_ended_truncates_without_a_cancel(fake: FakeRealtimeServer) -> None:
    """Generation outruns playback: by the barge-in the response is done, so there is nothing to
    cancel, but the model must still forget what the user did not hear."""
    session = await engine_for(fake).open_session(SessionOptions("s1"))
    await asyncio.wait_for(session._connected.wait(), 10)
    await speak_turn(session, 1)
    await until_reply_end(session, 1)  # the whole response arrived; the session plays it for a while
    await session.interrupt(Interrupt(1, MODEL_RATE // 5))
    await speak_turn(session, 2)
    second = await until_reply_end(session, 2)
    await session.close()
    assert fake.recorded.cancels == 0 and fake.recorded.errors_sent == []
    assert fake.recorded.truncations[0]["audio_end_ms"] == 200
    assert second[-1] == ReplyEnd(2, "done") and not any(isinstance(o, EngineError) for o in second)


async def test_a_cancel_that_crosses_response_done_is_ignored_quietly(fake: FakeRealtimeServer) -> None:
    fake.model.done_crosses_cancel = True
    session = await engine_for(fake).open_session(SessionOptions("s1"))
    await asyncio.wait_for(session._connected.wait(), 10)
    await speak_turn(session, 1)
    async for item in session.outputs():  # generation is over; response.done has not come yet
        if isinstance(item, Transcript) and item.role == "agent" and item.final:
            break
    await session.interrupt(Interrupt(1, MODEL_RATE // 5))
    fake.model.done_crosses_cancel = False
    await speak_turn(session, 2)
    second = await until_reply_end(session, 2)
    await session.close()
    assert fake.recorded.cancels == 1 and fake.recorded.errors_sent == ["response_cancel_not_active"]
    assert not any(isinstance(o, EngineError) for o in second), "the race is not the user's problem"
    assert second[-1] == ReplyEnd(2, "done")


async def test_the_start_up_check_accepts_the_model_and_names_an_unknown_one_or_a_refused_key(
    fake: FakeRealtimeServer,
) -> None:
    await engine_for(fake).check()
    with pytest.raises(EngineMisconfigured, match=RETIRED) as unknown:
        await engine_for(fake, model=RETIRED).check()
    assert "does not exist" in str(unknown.value)
    with pytest.raises(EngineMisconfigured, match="Incorrect API key"):
        await engine_for(fake, key="sk-revoked").check()
    assert fake.recorded.model_gets == [DEFAULT_MODEL, RETIRED, DEFAULT_MODEL]


async def test_the_start_up_check_lets_an_unreachable_service_pass_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = OpenAIRealtimeEngine(KEY, base_url="http://127.0.0.1:9/v1", connect_timeout_s=5)
    await engine.check()
    assert "could not check OpenAI model" in caplog.text
