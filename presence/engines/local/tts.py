"""Text to speech for the local engine: eSpeak NG streamed chunk by chunk with its phonemes.

Synthesis runs in a worker thread (the library is serialised process-wide, and far faster
than real time); chunks cross to the event loop as they are made, so the first audio of a
clause is ready about a millisecond after the clause is.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from presence.audio.espeak import Espeak, SpeechChunk, Voice
from presence.engines.local.piper import PiperSpeech, PiperVoice


@dataclass(slots=True)
class SynthesisStats:
    """Process-wide eSpeak NG cost, for benchmarks: CPU seconds and seconds of speech made."""

    cpu_s: float = 0.0
    audio_s: float = 0.0


STATS = SynthesisStats()
# eSpeak NG is one process-wide instance that synthesises one text at a time: one thread of
# our own, rather than a blocked thread of the loop's default executor per waiting session.
_SYNTHESIS = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="presence-tts")


async def run_synthesis(work: Callable[[], object]) -> None:
    """Run ``work`` on the synthesis thread (e.g. loading eSpeak NG)."""
    await asyncio.get_running_loop().run_in_executor(_SYNTHESIS, work)


async def speak(text: str, voice: Voice, cancel: threading.Event) -> AsyncIterator[SpeechChunk]:
    """Speech for ``text`` as it is synthesized; stops at the next chunk once ``cancel`` is set."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[SpeechChunk | BaseException | None] = asyncio.Queue()

    def on_chunk(chunk: SpeechChunk) -> bool:
        STATS.audio_s += len(chunk.samples) / Espeak.instance().sample_rate
        loop.call_soon_threadsafe(chunks.put_nowait, chunk)
        return not cancel.is_set()

    def produce() -> None:
        started = time.thread_time()
        try:
            Espeak.instance().stream(text, voice, on_chunk)
        except Exception as exc:
            loop.call_soon_threadsafe(chunks.put_nowait, exc)
        finally:
            STATS.cpu_s += time.thread_time() - started
            loop.call_soon_threadsafe(chunks.put_nowait, None)

    worker = loop.run_in_executor(_SYNTHESIS, produce)
    try:
        while True:
            item = await chunks.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            if cancel.is_set():
                break
            yield item
    finally:
        # A consumer that stops early without cancelling lets the (short) clause finish.
        await asyncio.shield(worker)


async def speak_piper(text: str, voice: PiperVoice, cancel: threading.Event) -> AsyncIterator[PiperSpeech]:
    """Piper speech for ``text``, one eSpeak clause at a time, on the synthesis thread."""
    loop = asyncio.get_running_loop()
    clauses = await loop.run_in_executor(_SYNTHESIS, Espeak.instance().phonemes_ipa, text)
    for clause in clauses:
        if cancel.is_set():
            return
        started = time.perf_counter()
        speech = await loop.run_in_executor(_SYNTHESIS, voice.synthesize, clause)
        STATS.cpu_s += time.perf_counter() - started  # wall time: onnxruntime computes on its own threads
        STATS.audio_s += len(speech.samples) / voice.sample_rate
        yield speech
