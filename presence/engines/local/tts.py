"""Text to speech for the local engine: eSpeak NG streamed chunk by chunk with its phonemes.

Synthesis runs in a worker thread (the library is serialised process-wide, and far faster
than real time); chunks cross to the event loop as they are made, so the first audio of a
clause is ready about a millisecond after the clause is.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

from presence.audio.espeak import Espeak, SpeechChunk, Voice


async def speak(text: str, voice: Voice, cancel: threading.Event) -> AsyncIterator[SpeechChunk]:
    """Speech for ``text`` as it is synthesized; stops at the next chunk once ``cancel`` is set."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[SpeechChunk | BaseException | None] = asyncio.Queue()

    def on_chunk(chunk: SpeechChunk) -> bool:
        loop.call_soon_threadsafe(chunks.put_nowait, chunk)
        return not cancel.is_set()

    def produce() -> None:
        try:
            Espeak.instance().stream(text, voice, on_chunk)
        except Exception as exc:
            loop.call_soon_threadsafe(chunks.put_nowait, exc)
        finally:
            loop.call_soon_threadsafe(chunks.put_nowait, None)

    worker = loop.run_in_executor(None, produce)
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
