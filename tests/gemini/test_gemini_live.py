"""The Gemini Live engine through the real ``google-genai`` SDK against a local fake of the service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from presence.engines.base import (
    EngineError,
    Interrupt,
    ReplyEnd,
    Transcript,
    TurnEvent,
    TurnEventKind,
    TurnTaken,
)
from presence.engines.gemini import MODEL_RATE, GeminiLiveEngine, TurnMode
from presence.media import AudioChunk, InputAudio
from presence.testing.fakes.drive import hear, one_turn_through_presence, open_connected, speak_turn, until_reply_end
from presence.testing.fakes.gemini_live_server import REPLY, FakeGeminiLive, FakeModel, _get
from tests.conftest import ServerFactory, silence, speech_like

KEY = "AIza-presence-test-SECRET-0123456789"


@pytest.fixture
async def fake() -> AsyncIterator[FakeGeminiLive]:
    async with FakeGeminiLive(FakeModel()).running() as server:
        yield server


def engine_for(fake: FakeGeminiLive, turns: TurnMode = "presence", silence_ms: int | None = None) -> GeminiLiveEngine:
    return GeminiLiveEngine(
        KEY,
        model="gemini-3.8-live",
        voice="Kore",
        persona="Be brief.",
        turns=turns,
        model_silence_ms=silence_ms,
        base_url=fake.base_url,
        ssl_context=fake.client_ssl,
    )


async def test_a_turn_carries_the_key_on_the_live_path_and_one_activity(fake: FakeGeminiLive) -> None:
    """(The reply itself: tests/engines/test_cloud_services.py.)"""
    session = await open_connected(engine_for(fake))
    await speak_turn(session, 1, seconds=0.5)
    await until_reply_end(session, 1)
    await session.close()
    rec = fake.recorded
    assert rec.api_keys == [KEY] and rec.paths[0].endswith("v1beta.GenerativeService.BidiGenerateContent")
    assert rec.mime_types == {"audio/pcm;rate=16000"}
    assert (rec.activity_starts, rec.activity_ends) == (1, 1), "presence's turn-taking drives the model"


async def test_the_setup_names_the_model_voice_persona_and_turns_off_the_models_own_detection(
    fake: FakeGeminiLive,
) -> None:
    session = await open_connected(engine_for(fake))
    await session.close()
    setup = fake.recorded.setups[0]
    assert setup["model"] == "models/gemini-3.8-live"
    generation = _get(setup, "generation_config")
    assert _get(generation, "response_modalities") == ["AUDIO"]
    voice = _get(_get(_get(generation, "speech_config"), "voice_config"), "prebuilt_voice_config")
    assert _get(voice, "voice_name") == "Kore"
    assert _get(setup, "system_instruction")["parts"][0]["text"] == "Be brief."
    assert _get(setup, "input_audio_transcription") is not None
    assert _get(setup, "output_audio_transcription") is not None
    detection = _get(_get(setup, "realtime_input_config"), "automatic_activity_detection")
    assert detection["disabled"] is True


async def test_a_barge_in_starts_a_new_activity_which_interrupts_the_model(fake: FakeGeminiLive) -> None:
    fake.model.realtime, fake.model.reply_ms = True, 3000
    session = await open_connected(engine_for(fake))
    await speak_turn(session, 1)
    await hear(session, MODEL_RATE // 2)
    await session.interrupt(Interrupt(1, 9_600))
    await session.turn_event(TurnEvent(TurnEventKind.USER_STARTED, 2, 0))  # the barge-in is the next turn
    audio = speech_like(0.4, seed=2)
    for offset in range(0, len(audio), 320):
        await session.push_audio(InputAudio(audio[offset : offset + 320], offset))
    await session.turn_event(TurnEvent(TurnEventKind.TURN_CONFIRMED, 2, len(audio)))
    outputs = await until_reply_end(session, 2)
    await session.close()
    assert fake.recorded.interrupted_replies == 1
    assert fake.recorded.activity_starts == 2, "one activity_start for the barge-in, not one per event"
    assert not any(getattr(o, "turn_id", None) == 1 for o in outputs), "nothing of the cut reply follows"
    assert outputs[-1] == ReplyEnd(2, "done")


@pytest.mark.parametrize("failure", ["error", "close", "go_away"])
async def test_a_connection_lost_mid_reply_fails_that_turn_and_the_conversation_resumes(
    fake: FakeGeminiLive, failure: str
) -> None:
    session = await open_connected(engine_for(fake))
    await speak_turn(session, 1)
    await until_reply_end(session, 1)  # a whole reply: the service handed out a resumption handle
    fake.model.fail = failure
    await speak_turn(session, 2)
    second = await until_reply_end(session, 2)
    fake.model.fail = None
    await asyncio.wait_for(session._connected.wait(), 10)
    await speak_turn(session, 3)
    third = await until_reply_end(session, 3)
    await session.close()
    assert [o.code for o in second if isinstance(o, EngineError)] == ["engine_disconnected"]
    assert second[-1] == ReplyEnd(2, "error")
    assert third[-1] == ReplyEnd(3, "done") and any(isinstance(o, AudioChunk) for o in third)
    resumed = _get(fake.recorded.setups[1], "session_resumption")
    assert resumed["handle"] == "handle-1", "the new connection resumes the conversation"


async def test_with_model_turns_the_models_detection_takes_the_turn_before_any_audio(fake: FakeGeminiLive) -> None:
    session = await open_connected(engine_for(fake, turns="model", silence_ms=300))
    await session.turn_event(TurnEvent(TurnEventKind.USER_STARTED, 1, 0))
    audio = np.concatenate([speech_like(0.5, seed=1), silence(0.6)])
    for offset in range(0, len(audio), 320):
        await session.push_audio(InputAudio(audio[offset : offset + 320], offset))
    outputs = await until_reply_end(session, 1)
    await session.close()
    assert outputs[0] == TurnTaken(1) or isinstance(outputs[0], Transcript)
    taken = outputs.index(TurnTaken(1))
    first_audio = next(i for i, o in enumerate(outputs) if isinstance(o, AudioChunk))
    assert taken < first_audio
    assert outputs[-1] == ReplyEnd(1, "done")
    detection = _get(_get(fake.recorded.setups[0], "realtime_input_config"), "automatic_activity_detection")
    assert not detection.get("disabled") and _get(detection, "silence_duration_ms") == 300
    assert fake.recorded.activity_starts == 0, "the model finds the activity itself"


async def test_with_model_turns_through_a_presence_session_the_models_detection_ends_the_turn(
    fake: FakeGeminiLive, server_factory: ServerFactory
) -> None:
    """(Presence's own turns through a session: tests/engines/test_cloud_services.py.)"""
    engine = engine_for(fake, turns="model", silence_ms=300)
    audio = np.concatenate([speech_like(0.6), silence(1.0)])
    async with server_factory(engine=engine, confirm_ms=3000) as srv:  # the model, not our rule, ends it
        record, client = await one_turn_through_presence(srv.url, engine, audio)
    assert record["agent_text"] == REPLY and record["error"] is None
    assert record["turn_confirmed_ms"] < 3000, "the model's detection ended the turn, not the 3 s rule"
    assert client.received.animation, "the reply was animated"
