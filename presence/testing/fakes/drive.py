"""Driving an engine session directly, as the presence session would: one spoken turn, its reply."""

from __future__ import annotations

import asyncio
from typing import Any

from presence.audio.signals import speech_like
from presence.client.connection import PresenceClient
from presence.engines.base import (
    Engine,
    EngineOutput,
    EngineSession,
    ReplyEnd,
    SessionOptions,
    TurnEvent,
    TurnEventKind,
)
from presence.media import AudioChunk, InputAudio, Samples


async def speak_turn(session: EngineSession, turn_id: int, seconds: float = 0.5) -> None:
    """The user starts, speaks ``seconds`` of voice-like audio in 20 ms blocks, and is done."""
    await session.turn_event(TurnEvent(TurnEventKind.USER_STARTED, turn_id, 0))
    audio = speech_like(seconds, seed=turn_id)
    for offset in range(0, len(audio), 320):
        await session.push_audio(InputAudio(audio[offset : offset + 320], offset))
    await session.turn_event(TurnEvent(TurnEventKind.TURN_CONFIRMED, turn_id, len(audio)))


async def until_reply_end(session: EngineSession, turn_id: int, limit_s: float = 10) -> list[EngineOutput]:
    """Every output up to and including the ``ReplyEnd`` of ``turn_id``."""
    got: list[EngineOutput] = []

    async def collect() -> None:
        async for item in session.outputs():
            got.append(item)
            if isinstance(item, ReplyEnd) and item.turn_id == turn_id:
                return

    await asyncio.wait_for(collect(), limit_s)
    return got


async def hear(session: EngineSession, samples: int) -> int:
    """Read reply audio until at least ``samples`` of it came (a listener partway into a reply)."""
    heard = 0
    async for item in session.outputs():
        if isinstance(item, AudioChunk):
            heard += len(item.samples)
            if heard >= samples:
                break
    return heard


async def open_connected(engine: Engine, session_id: str = "s1", limit_s: float = 10) -> Any:
    """A cloud engine's session once its service connection is up (``CloudSession._connected``)."""
    session: Any = await engine.open_session(SessionOptions(session_id))
    await asyncio.wait_for(session._connected.wait(), limit_s)
    return session


async def one_turn_through_presence(
    url: str, engine: Any, audio: Samples, limit_s: float = 10
) -> tuple[dict[str, Any], PresenceClient]:
    """Speak ``audio`` into a presence session at a microphone's pace, once the cloud
    ``engine``'s connection for that session is up; the turn's metrics event and the client
    (with all it received)."""
    client = PresenceClient(url)
    await client.connect()
    await asyncio.wait_for(engine.sessions[0]._connected.wait(), limit_s)
    for offset in range(0, len(audio), 320):
        await client.send_audio(audio[offset : offset + 320])
        await asyncio.sleep(0.02)  # a microphone's pace
    record = await client.wait_for_event(lambda b: b.get("type") == "metrics", limit_s)
    await client.close()
    return record, client
