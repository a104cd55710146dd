"""A fake service on its own event loop in a thread, for code that runs its own loop
(``presence serve`` calls ``asyncio.run``)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

Fake = TypeVar("Fake")


@contextlib.contextmanager
def running_in_a_thread(start: Callable[[], AbstractAsyncContextManager[Fake]]) -> Iterator[Fake]:
    """``start()`` (e.g. ``FakeGeminiLive().running``) entered on a fresh loop in a thread."""
    ready = threading.Event()
    held: list[tuple[Fake, asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def serve() -> None:
        stop = asyncio.Event()
        async with start() as fake:
            held.append((fake, asyncio.get_running_loop(), stop))
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name="fake-service")
    thread.start()
    assert ready.wait(10), "the fake did not start"
    fake, loop, stop = held[0]
    try:
        yield fake
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
