"""Driving an engine session directly, as the presence session would: one spoken turn, its reply."""

from __future__ import annotations

import asyncio

from presence.audio.signals import speech_like
from presence.engines.base import EngineOutput, EngineSession, ReplyEnd, TurnEvent, TurnEventKind
from presence.media import InputAudio


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
