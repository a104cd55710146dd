"""``presence serve --engine gemini`` checks the model once at start-up, through the real SDK:
an unknown one stops the server before it starts, with a message that names it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

import pytest

from presence.cli import main
from tests.fakes.gemini_live_server import FakeGeminiLive, FakeModel

KEY = "AIza-presence-test-SECRET-0123456789"
RETIRED = "gemini-2.5-flash-native-audio-preview-09-2025"


@contextlib.contextmanager
def fake_in_a_thread(model: FakeModel) -> Iterator[FakeGeminiLive]:
    """The fake on its own event loop, since ``presence serve`` runs its own."""
    ready = threading.Event()
    held: dict[str, object] = {}

    async def serve() -> None:
        stop = asyncio.Event()
        async with FakeGeminiLive(model).running() as fake:
            held.update(fake=fake, loop=asyncio.get_running_loop(), stop=stop)
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name="fake-gemini")
    thread.start()
    assert ready.wait(10), "the fake did not start"
    fake, loop, stop = held["fake"], held["loop"], held["stop"]
    assert isinstance(fake, FakeGeminiLive) and isinstance(loop, asyncio.AbstractEventLoop)
    assert isinstance(stop, asyncio.Event)
    try:
        yield fake
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


def test_serve_with_an_unknown_gemini_model_fails_fast_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with fake_in_a_thread(FakeModel()) as fake:
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        monkeypatch.setenv("GEMINI_API_KEY", KEY)
        monkeypatch.setenv("SSL_CERT_FILE", str(fake.cert_file))  # the SDK's own TLS trusts the fake
        code = main(
            [
                "serve",
                "--engine",
                "gemini",
                "--gemini-model",
                RETIRED,
                "--gemini-base-url",
                fake.base_url,
                "--port",
                "0",
            ]
        )
        asked = list(fake.recorded.model_gets)
    error = capsys.readouterr().err
    assert code == 2
    assert f"Gemini model {RETIRED!r}" in error and "is not found for API version v1beta" in error
    assert KEY not in error
    assert asked == [RETIRED] and fake.recorded.connections == 0, "checked once, no session opened"
