"""Long conversations with Gemini Live: connections that end every ~10 minutes, sessions that
would end at ~15 without compression, and replies that must not fail at the boundary. The
fake's limits run on its own clock, which the tests move, so 20 minutes take seconds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from presence.engines.base import (
    EngineError,
    EngineOutput,
    Interrupt,
    ReplyEnd,
    SessionOptions,
    Transcript,
    TurnEvent,
    TurnEventKind,
)
from presence.engines.gemini import GeminiLiveEngine, GeminiLiveSession
from presence.engines.scripted import synth_voice
from presence.media import AudioChunk, InputAudio
from presence.testing.fakes.drive import speak_turn, until_reply_end
from presence.testing.fakes.gemini_live_server import FakeGeminiLive, FakeModel

KEY = "AIza-presence-test-SECRET-0123456789"
CONNECTION_S = 600.0  # the service's ~10 minutes per connection
SESSION_S = 900.0  # its ~15 minutes per audio session without compression


@pytest.fixture
async def fake() -> AsyncIterator[FakeGeminiLive]:
    model = FakeModel(connection_limit_s=CONNECTION_S, session_limit_s=SESSION_S, go_away_notice_s=20)
    async with FakeGeminiLive(model).running() as server:
        yield server


async def connected(fake: FakeGeminiLive) -> GeminiLiveSession:
    engine = GeminiLiveEngine(KEY, base_url=fake.base_url, ssl_context=fake.client_ssl)
    session = await engine.open_session(SessionOptions("s1"))
    await asyncio.wait_for(session._connected.wait(), 10)
    return session


async def reply_with_clock(
    session: GeminiLiveSession, fake: FakeGeminiLive, turn_id: int, mid_reply_s: float
) -> list[EngineOutput]:
    """Outputs up to ``turn_id``'s end; the fake's clock moves ``mid_reply_s`` at its first audio."""
    got: list[EngineOutput] = []

    async def collect() -> None:
        moved = False
        async for item in session.outputs():
            got.append(item)
            if isinstance(item, AudioChunk) and not moved:
                moved = True
                await fake.advance(mid_reply_s)
            if isinstance(item, ReplyEnd) and item.turn_id == turn_id:
                return

    await asyncio.wait_for(collect(), 10)
    return got


async def settled(session: GeminiLiveSession, fake: FakeGeminiLive) -> None:
    """A pause between turns: the engine has moved after every goAway the fake sent."""

    async def moved() -> None:
        rec = fake.recorded
        async with fake.accepted:
            await fake.accepted.wait_for(lambda: len(rec.session_of_connection) > rec.go_aways)
        await session._connected.wait()

    await asyncio.wait_for(moved(), 10)


async def test_a_go_away_mid_reply_lets_the_reply_finish_then_moves_and_resumes_the_session(
    fake: FakeGeminiLive,
) -> None:
    fake.model.realtime, fake.model.reply_ms = True, 1500  # the goAway lands while audio still streams
    session = await connected(fake)
    await speak_turn(session, 1)
    first = await reply_with_clock(session, fake, 1, CONNECTION_S - 15)  # inside the goAway notice
    assert fake.recorded.go_aways == 1
    await asyncio.wait_for(session._connected.wait(), 10)
    fake.model.realtime = False
    await speak_turn(session, 2)
    second = await until_reply_end(session, 2)
    await session.close()
    assert not any(isinstance(o, EngineError) for o in first + second)
    assert first[-1] == ReplyEnd(1, "done") and second[-1] == ReplyEnd(2, "done")
    assert sum(len(o.samples) for o in first if isinstance(o, AudioChunk)) == 1500 * 24, "the whole reply"
    assert session.moves == 1 and fake.recorded.closed_at_limit == 0
    assert fake.recorded.session_of_connection == [1, 1], "the new connection resumed the conversation"


async def test_a_turn_spoken_while_the_engine_moves_is_replayed_whole_on_the_new_connection(
    fake: FakeGeminiLive,
) -> None:
    fake.model.realtime, fake.model.reply_ms = True, 1500
    session = await connected(fake)
    await speak_turn(session, 1)
    fake.setup_gate = asyncio.Event()  # the next connection's setup waits
    await reply_with_clock(session, fake, 1, CONNECTION_S - 15)
    await asyncio.wait_for(fake.setup_held.wait(), 10)  # the engine is moving
    await speak_turn(session, 2, seconds=0.5)  # all of it while there is no connection
    assert not session._connected.is_set()
    fake.setup_gate.set()
    second = await until_reply_end(session, 2)
    await session.close()
    finals = {o.role: o.text for o in second if isinstance(o, Transcript) and o.final}
    assert finals["user"] == "0.5 seconds of speech", "the new connection heard the whole turn"
    assert second[-1] == ReplyEnd(2, "done") and not any(isinstance(o, EngineError) for o in second)
    assert fake.recorded.session_of_connection == [1, 1]


async def test_a_twenty_minute_conversation_crosses_every_limit_without_a_failed_turn(
    fake: FakeGeminiLive,
) -> None:
    """40 turns, one every 30 s of the fake's clock: two goAways, and past the 15-minute mark
    that ends an uncompressed session. Each turn's clock moves partly mid-reply; the user
    pauses between turns long enough for a move (``settled``)."""
    session = await connected(fake)
    ends: list[ReplyEnd] = []
    errors: list[EngineError] = []
    for turn in range(1, 41):
        await speak_turn(session, turn)
        outputs = await reply_with_clock(session, fake, turn, 10)
        ends += [o for o in outputs if isinstance(o, ReplyEnd)]
        errors += [o for o in outputs if isinstance(o, EngineError)]
        await settled(session, fake)
        await fake.advance(20)
        await settled(session, fake)
    await session.close()
    rec = fake.recorded
    assert fake.now_s == 1200
    assert errors == [] and ends == [ReplyEnd(t, "done") for t in range(1, 41)]
    assert rec.go_aways == 2 and rec.closed_at_limit == 0, "every connection was left before its end"
    assert rec.sessions_expired == 0, "context window compression kept the session past 15 minutes"
    assert rec.session_of_connection == [1, 1, 1], "one conversation over three connections"
    assert session.moves == 2 and session.connect_failures == 0


async def test_without_compression_the_fake_ends_the_session_at_its_limit(fake: FakeGeminiLive) -> None:
    """The fake's session limit is real: a setup without compression loses its session at 15 min."""
    engine = GeminiLiveEngine(KEY, base_url=fake.base_url, ssl_context=fake.client_ssl)
    engine.connect_config = lambda persona, resume_handle: GeminiLiveEngine.connect_config(  # type: ignore[method-assign]
        engine, persona, resume_handle
    ).model_copy(update={"context_window_compression": None})
    fake.model.connection_limit_s = None  # only the session's limit is in play here
    session = await engine.open_session(SessionOptions("s1"))
    await asyncio.wait_for(session._connected.wait(), 10)
    for _ in range(3):
        await fake.advance(300)
        await asyncio.wait_for(session._connected.wait(), 10)
    await session.close()
    assert fake.recorded.sessions_expired == 1


async def test_an_interruption_and_its_turn_complete_in_one_message_leave_the_next_silent_turn_unblocked(
    fake: FakeGeminiLive,
) -> None:
    """The model may choose to say nothing; its empty turn must end at once, not at the reply timeout."""
    fake.model.realtime, fake.model.reply_ms = True, 3000
    fake.model.interrupted_with_turn_complete = True
    session = await connected(fake)
    await speak_turn(session, 1)
    async for item in session.outputs():
        if isinstance(item, AudioChunk):
            break
    await session.interrupt(Interrupt(1, 4_800))
    fake.model.silent = True
    await session.turn_event(TurnEvent(TurnEventKind.USER_STARTED, 2, 0))
    audio = synth_voice(400, 16_000, seed=2)
    for offset in range(0, len(audio), 320):
        await session.push_audio(InputAudio(audio[offset : offset + 320], offset))
    await session.turn_event(TurnEvent(TurnEventKind.TURN_CONFIRMED, 2, len(audio)))
    outputs = await until_reply_end(session, 2, limit_s=5)
    await session.close()
    assert fake.recorded.interrupted_replies == 1
    assert outputs[-1] == ReplyEnd(2, "done")
    assert not any(isinstance(o, AudioChunk) for o in outputs)


async def test_a_turn_the_model_chooses_not_to_answer_ends_at_once(fake: FakeGeminiLive) -> None:
    """Proactive audio is always on with the 3.8 model: silence is an answer, not a hang."""
    fake.model.silent = True
    session = await connected(fake)
    await speak_turn(session, 1)
    outputs = await until_reply_end(session, 1, limit_s=5)
    await session.close()
    assert outputs[-1] == ReplyEnd(1, "done")
    assert not any(isinstance(o, (AudioChunk, EngineError)) for o in outputs)
