"""``presence serve --engine openai`` checks the model once at start-up, through the real SDK:
an unknown one, or a refused key, stops the server before it starts, with a message that says so."""

from __future__ import annotations

import pytest

from presence.cli import main
from presence.testing.fakes.openai_realtime_server import FakeModel, FakeRealtimeServer
from presence.testing.fakes.threaded import running_in_a_thread

KEY = "sk-presence-test-SECRET-0123456789"


@pytest.mark.parametrize(
    ("model", "key", "words"),
    [
        ("gpt-4o-realtime-preview", KEY, "does not exist or you do not have access to it"),
        ("gpt-realtime-2.1", "sk-revoked", "Incorrect API key provided"),
    ],
)
def test_serve_with_a_model_the_service_refuses_fails_fast_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], model: str, key: str, words: str
) -> None:
    with running_in_a_thread(FakeRealtimeServer(FakeModel(api_keys=(KEY,))).running) as fake:
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        monkeypatch.setenv("OPENAI_API_KEY", key)
        code = main(["serve", "--engine", "openai", "--openai-model", model, "--openai-base-url", fake.base_url])
        asked = list(fake.recorded.model_gets)
    error = capsys.readouterr().err
    assert code == 2
    assert f"OpenAI model {model!r}" in error and words in error and key not in error
    assert asked == [model] and fake.recorded.connections == 0, "checked once, no session opened"
