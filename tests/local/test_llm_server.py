"""--llm-url against a real OpenAI-compatible server: llama-cpp-python's own
(``python -m llama_cpp.server``), started here with the embedded model's GGUF."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import IO

import pytest

from presence.bench.answers import on_topic
from presence.config import Settings
from presence.engines.base import SessionOptions, Transcript
from presence.engines.local.engine import LocalEngine
from presence.engines.local.llm import OpenAICompatibleModel, smollm2_path
from presence.media import AudioChunk
from presence.testing.servers import ServerDidNotStart, free_port, stop_process, wait_until_answers
from tests.conftest import REPO
from tests.local.test_local_engine import ask

pytestmark = [pytest.mark.local_models, pytest.mark.slow]


@pytest.fixture(scope="module")
def llm_url() -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path())]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_threads", "1", "--verbose", "False"]
    with tempfile.TemporaryFile("w+") as log:  # a file, not a pipe nobody reads while it starts
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, text=True)
        try:
            try:  # ready when it answers; a crash or the deadline fails with its stderr
                wait_until_answers(f"http://127.0.0.1:{port}/v1/models", server, 120, lambda: _read(log), poll_s=0.2)
            except ServerDidNotStart as exc:
                pytest.fail(f"llama_cpp.server did not start: {exc}")
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            stop_process(server)


def _read(log: IO[str]) -> str:
    log.seek(0)
    return log.read()


async def test_replies_stream_from_a_real_openai_compatible_server(llm_url: str) -> None:
    model = OpenAICompatibleModel(llm_url, "smollm2", None)
    await model.start()
    pieces = [p async for p in model.stream([{"role": "user", "content": "Say hello."}], threading.Event())]
    await model.stop()
    assert len(pieces) > 1, "streamed token by token"
    assert "".join(pieces).strip()


async def test_the_engine_answers_a_spoken_question_through_the_server(llm_url: str) -> None:
    settings = Settings(engine="local", llm_url=llm_url, knowledge=str(REPO / "examples" / "concierge.md"))
    engine = LocalEngine(settings)
    await engine.start()
    session = await engine.open_session(SessionOptions("t"))
    outputs = await ask(session, 1, "What is the wifi password?")
    await session.close()
    await engine.stop()
    heard = [o for o in outputs if isinstance(o, Transcript) and o.role == "user" and o.final]
    agent = [o for o in outputs if isinstance(o, Transcript) and o.role == "agent" and o.final]
    assert heard and "password" in heard[-1].text.lower()
    assert any(isinstance(o, AudioChunk) for o in outputs)
    assert agent and on_topic("what's the wifi password", agent[-1].text), agent[-1].text
