"""A refused configuration is an error to report, not a network blip to retry: Gemini Live,
through the real ``google-genai`` SDK against the strict fake."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from google import genai
from google.genai import errors, types

from presence.engines.base import EngineError, EngineOutput, ReplyEnd, SessionOptions
from presence.engines.cloud import MISCONFIGURED, EngineMisconfigured
from presence.engines.gemini import DEFAULT_MODEL, GeminiLiveEngine, GeminiLiveSession
from presence.testing.fakes.drive import speak_turn, until_reply_end
from presence.testing.fakes.gemini_live_server import LIVE_MODELS, FakeGeminiLive, FakeModel, _get

KEY = "AIza-presence-test-SECRET-0123456789"
RETIRED = "gemini-2.5-flash-native-audio-preview-09-2025"


@pytest.fixture
async def fake() -> AsyncIterator[FakeGeminiLive]:
    async with FakeGeminiLive(FakeModel(api_keys=(KEY,))).running() as server:
        yield server


def engine_for(fake: FakeGeminiLive, model: str = DEFAULT_MODEL, key: str = KEY) -> GeminiLiveEngine:
    return GeminiLiveEngine(key, model=model, base_url=fake.base_url, ssl_context=fake.client_ssl)


async def first_output(session: GeminiLiveSession) -> EngineOutput:
    async def first() -> EngineOutput:
        async for item in session.outputs():
            return item
        raise AssertionError("the outputs ended without a word")

    return await asyncio.wait_for(first(), 10)


async def test_an_unknown_model_fails_the_session_once_naming_it_with_the_services_words(
    fake: FakeGeminiLive,
) -> None:
    session = await engine_for(fake, model=RETIRED).open_session(SessionOptions("s1"))
    error = await first_output(session)
    assert isinstance(error, EngineError) and error.fatal and error.code == MISCONFIGURED
    assert RETIRED in error.message and "is not found for API version v1beta" in error.message
    assert session._runner is not None
    await asyncio.wait_for(session._runner, 10)  # the connection loop ended: no retry, no backoff
    assert fake.recorded.connections == 1 and session.connect_failures == 0
    await speak_turn(session, 1)
    outputs = await until_reply_end(session, 1)
    await session.close()
    assert [o.code for o in outputs if isinstance(o, EngineError)] == [MISCONFIGURED], "later turns say why too"
    assert outputs[-1] == ReplyEnd(1, "error")


async def test_a_refused_key_fails_the_session_with_the_services_words_and_no_retry(fake: FakeGeminiLive) -> None:
    session = await engine_for(fake, key="AIza-revoked-key").open_session(SessionOptions("s1"))
    error = await first_output(session)
    assert session._runner is not None
    await asyncio.wait_for(session._runner, 10)
    await session.close()
    assert isinstance(error, EngineError) and error.fatal and error.code == MISCONFIGURED
    assert "API key not valid" in error.message and DEFAULT_MODEL in error.message
    assert "AIza-revoked-key" not in error.message
    assert fake.recorded.refusals == [(1007, "API key not valid. Please pass a valid API key.")]


@pytest.mark.parametrize("model", LIVE_MODELS)
async def test_the_engines_setup_is_accepted_by_every_current_live_model_with_compression_on(
    fake: FakeGeminiLive, model: str
) -> None:
    session = await engine_for(fake, model=model).open_session(SessionOptions("s1"))
    await asyncio.wait_for(session._connected.wait(), 10)
    await session.close()
    setup = fake.recorded.setups[0]
    assert fake.recorded.refusals == []
    assert _get(_get(setup, "context_window_compression"), "sliding_window") == {}
    assert _get(setup, "session_resumption") is not None


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"proactivity": types.ProactivityConfig(proactive_audio=False)}, "proactive_audio"),
        ({"enable_affective_dialog": True}, "enable_affective_dialog"),
        ({"thinking_config": types.ThinkingConfig(thinking_level=types.ThinkingLevel.LOW)}, "thinking_level"),
    ],
)
async def test_the_fake_refuses_what_the_38_model_dropped_as_the_service_does(
    fake: FakeGeminiLive, config: dict[str, Any], words: str
) -> None:
    client = genai.Client(
        api_key=KEY,
        http_options=types.HttpOptions(
            api_version="v1beta", base_url=fake.base_url, async_client_args={"ssl": fake.client_ssl}
        ),
    )
    live_config = types.LiveConnectConfig(response_modalities=[types.Modality.AUDIO], **config)
    with pytest.raises(errors.APIError) as refused:
        async with client.aio.live.connect(model="gemini-3.8-live", config=live_config):
            pass
    assert refused.value.code == 1007 and words in str(refused.value.details)


async def test_the_extended_thinking_model_takes_a_thinking_level(fake: FakeGeminiLive) -> None:
    client = genai.Client(
        api_key=KEY,
        http_options=types.HttpOptions(
            api_version="v1beta", base_url=fake.base_url, async_client_args={"ssl": fake.client_ssl}
        ),
    )
    config = types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        thinking_config=types.ThinkingConfig(thinking_level=types.ThinkingLevel.LOW),
    )
    async with client.aio.live.connect(model="gemini-3.8-live-extended-thinking", config=config):
        pass
    assert fake.recorded.refusals == []


async def test_a_refused_resumption_starts_a_new_conversation_instead_of_failing(fake: FakeGeminiLive) -> None:
    """A stale handle may be what the service refuses: the engine tries once without it."""
    fake.model.models = (*LIVE_MODELS, "gemini-flaky")
    session = await engine_for(fake, model="gemini-flaky").open_session(SessionOptions("s1"))
    await asyncio.wait_for(session._connected.wait(), 10)
    await speak_turn(session, 1)
    await until_reply_end(session, 1)
    assert session.resume_handle is not None
    fake.model.models = LIVE_MODELS  # from now on the service refuses the model itself
    fake.model.fail = "close"
    await speak_turn(session, 2)
    await until_reply_end(session, 2)
    error = await first_output(session)
    await session.close()
    assert isinstance(error, EngineError) and error.code == MISCONFIGURED
    handles = [_get(_get(s, "session_resumption") or {}, "handle") for s in fake.recorded.setups]
    assert handles[1] is not None and handles[2] is None, "refused with the handle, then tried afresh"


async def test_the_start_up_check_accepts_a_live_model_and_names_an_unknown_one(fake: FakeGeminiLive) -> None:
    await engine_for(fake).check()
    with pytest.raises(EngineMisconfigured, match=RETIRED) as refused:
        await engine_for(fake, model=RETIRED).check()
    assert "is not found" in str(refused.value)
    with pytest.raises(EngineMisconfigured, match="API key not valid"):
        await engine_for(fake, key="AIza-revoked-key").check()
    assert fake.recorded.model_gets == [DEFAULT_MODEL, RETIRED, DEFAULT_MODEL]


async def test_the_start_up_check_lets_an_unreachable_service_pass_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeGeminiLive()
    engine = GeminiLiveEngine(KEY, base_url="https://127.0.0.1:9", ssl_context=fake.client_ssl, connect_timeout_s=5)
    await engine.check()
    assert "could not check Gemini model" in caplog.text
