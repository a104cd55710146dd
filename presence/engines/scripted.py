"""The scripted engine: replies with exact, configurable timings, for tests and benchmarks.

Given a list of replies, a think time and a chunk size, it answers every turn with the next
reply, spoken by a deterministic synthetic voice (a pitched, syllable-shaped signal, so
lip-sync and level meters see speech-like motion). Work starts when asked (speculatively at
``USER_PAUSED``), so the first chunk is emitted exactly ``think_ms`` after that moment;
``scheduled_first_audio`` records when, so benchmarks can subtract it to the microsecond.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Final

import numpy as np

from presence.config import Settings
from presence.engines.base import (
    Engine,
    EngineOutput,
    EngineSession,
    Interrupt,
    ReplyEnd,
    SessionOptions,
    Transcript,
    TurnEvent,
    TurnEventKind,
    start_reply_task,
    until_closed,
)
from presence.media import AudioChunk, InputAudio

SAMPLE_RATE: Final = 24_000
_SYLLABLE_MS: Final = 180


@dataclass(frozen=True, slots=True)
class Script:
    replies: tuple[str, ...] = ("Hello! This is a scripted reply.",)
    think_ms: int = 0
    reply_ms: int = 1200
    chunk_ms: int = 20
    #: "burst": emit chunks as fast as the consumer takes them; "realtime": one chunk per chunk_ms.
    pacing: str = "burst"


@functools.lru_cache(maxsize=32)
def synth_voice(duration_ms: int, sample_rate: int = SAMPLE_RATE, seed: int = 0) -> np.ndarray:
    """A deterministic speech-like signal: voiced syllables with pauses, 0.3 peak.

    Harmonics of a gliding 120–180 Hz fundamental under a raised-cosine syllable envelope,
    with short unvoiced gaps; the same inputs always give the same samples.
    """
    n = duration_ms * sample_rate // 1000
    t = np.arange(n) / sample_rate
    rng = np.random.default_rng(seed)
    f0 = 150 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    syllable = int(_SYLLABLE_MS * sample_rate / 1000)
    envelope = np.zeros(n)
    for start in range(0, n, syllable):
        length = min(int(syllable * rng.uniform(0.6, 0.9)), n - start)
        envelope[start : start + length] = np.sin(np.linspace(0, np.pi, length)) ** 2
    signal = voice * envelope
    peak = float(np.max(np.abs(signal))) or 1.0
    out = (0.3 * signal / peak).astype(np.float32)
    out.setflags(write=False)  # cached and shared between replies
    return out


class ScriptedEngine(Engine):
    name = "scripted"

    def __init__(self, script: Script, clock: Callable[[], float] = time.monotonic) -> None:
        self.script = script
        self.clock = clock
        self.sessions: list[ScriptedSession] = []

    async def open_session(self, options: SessionOptions) -> ScriptedSession:
        return ScriptedSession(self.script, self.clock, self.sessions)


class ScriptedSession(EngineSession):
    """One conversation. Keeps no state between turns but the reply counter."""

    def __init__(self, script: Script, clock: Callable[[], float], registry: list[ScriptedSession]) -> None:
        # The engine's open sessions: joined here, left on close (the engine keeps no closed ones).
        self._registry = registry
        registry.append(self)
        self.script = script
        self.clock = clock
        self._outputs: asyncio.Queue[EngineOutput | None] = asyncio.Queue(maxsize=64)
        self._replies: dict[int, asyncio.Task[None]] = {}
        self._started: set[int] = set()  # turns whose reply began (finished or not)
        self._reply_count = 0
        self._closed = False
        self.audio_samples_heard = 0
        #: turn_id → monotonic time the first chunk was due (think time after the start).
        self.scheduled_first_audio: dict[int, float] = {}
        self.interrupts: list[Interrupt] = []
        self.events: list[TurnEvent] = []

    async def push_audio(self, audio: InputAudio) -> None:
        self.audio_samples_heard += len(audio.samples)

    async def turn_event(self, event: TurnEvent) -> None:
        self.events.append(event)
        if event.kind in (TurnEventKind.USER_PAUSED, TurnEventKind.TURN_CONFIRMED):
            if event.turn_id not in self._started:
                self._start_reply(event.turn_id)
        elif event.kind in (TurnEventKind.TURN_ABANDONED, TurnEventKind.TURN_RESUMED):
            await self._cancel(event.turn_id)

    async def interrupt(self, interrupt: Interrupt) -> None:
        self.interrupts.append(interrupt)
        await self._cancel(interrupt.turn_id)

    def outputs(self) -> AsyncIterator[EngineOutput]:
        return until_closed(self._outputs)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(ValueError):
            self._registry.remove(self)
        for turn_id in list(self._replies):
            await self._cancel(turn_id)
        with contextlib.suppress(asyncio.QueueFull):
            self._outputs.put_nowait(None)

    def _start_reply(self, turn_id: int) -> None:
        text = self.script.replies[(turn_id - 1) % len(self.script.replies)]
        self._reply_count += 1
        self._started.add(turn_id)
        started = self.clock()
        self.scheduled_first_audio[turn_id] = started + self.script.think_ms / 1000
        self._replies[turn_id] = start_reply_task(
            turn_id, self._speak(turn_id, text, started), self._outputs.put, f"scripted-{turn_id}"
        )

    async def _cancel(self, turn_id: int) -> None:
        task = self._replies.pop(turn_id, None)
        self._started.discard(turn_id)  # an abandoned speculation may start again later
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.scheduled_first_audio.pop(turn_id, None)
        # Purge what the cancelled reply already queued: the contract says nothing of it escapes.
        kept = []
        while not self._outputs.empty():
            item = self._outputs.get_nowait()
            if item is None or item.turn_id != turn_id:
                kept.append(item)
        for item in kept:
            self._outputs.put_nowait(item)

    async def _speak(self, turn_id: int, text: str, started: float) -> None:
        script = self.script
        await self._sleep_until(started + script.think_ms / 1000)
        audio = synth_voice(script.reply_ms, seed=turn_id % 8)  # cached: a few distinct voices suffice
        chunk = max(1, script.chunk_ms * SAMPLE_RATE // 1000)
        words = text.split()
        n_chunks = -(-len(audio) // chunk)
        for index, offset in enumerate(range(0, len(audio), chunk)):
            # Spread the words over the chunks so "what was heard" can be cut at a chunk.
            spoken = words[index * len(words) // n_chunks : (index + 1) * len(words) // n_chunks]
            await self._outputs.put(
                AudioChunk(turn_id, audio[offset : offset + chunk], SAMPLE_RATE, (), " ".join(spoken))
            )
            if script.pacing == "realtime":
                await self._sleep_until(started + script.think_ms / 1000 + (offset + chunk) / SAMPLE_RATE)
        await self._outputs.put(Transcript("agent", text, True, turn_id))
        await self._outputs.put(ReplyEnd(turn_id, "done"))
        self._replies.pop(turn_id, None)

    async def _sleep_until(self, deadline: float) -> None:
        delay = deadline - self.clock()
        if delay > 0:
            await asyncio.sleep(delay)


def create_engine(settings: Settings) -> ScriptedEngine:
    replies = tuple(r.strip() for r in settings.scripted_reply.split("|") if r.strip()) or Script().replies
    return ScriptedEngine(
        Script(
            replies=replies,
            think_ms=settings.scripted_think_ms,
            reply_ms=settings.scripted_reply_ms,
            chunk_ms=settings.scripted_chunk_ms,
        )
    )
