"""``presence serve --engine gemini`` checks the model once at start-up, through the real SDK:
an unknown one stops the server before it starts, with a message that names it."""

from __future__ import annotations

import pytest

from presence.cli import main
from presence.testing.fakes.gemini_live_server import FakeGeminiLive, FakeModel
from presence.testing.fakes.threaded import running_in_a_thread

KEY = "AIza-presence-test-SECRET-0123456789"
RETIRED = "gemini-2.5-flash-native-audio-preview-09-2025"


def test_serve_with_an_unknown_gemini_model_fails_fast_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_in_a_thread(FakeGeminiLive(FakeModel()).running) as fake:
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
