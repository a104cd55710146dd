"""--llm-url: the local pipeline with any OpenAI-compatible chat endpoint, through the real
openai client, against a small local server that speaks the streaming chat-completions format."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from presence.engines.local.llm import LanguageModelError, OpenAICompatibleModel
from tests.conftest import run_uvicorn


def chunk(content: str | None, finish: str | None = None) -> str:
    delta = {"content": content} if content is not None else {}
    body = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "fake",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n"


class FakeEndpoint:
    """Records requests; answers with a fixed reply, token by token, or an error."""

    def __init__(self, reply: list[str], status: int = 200) -> None:
        self.reply = reply
        self.status = status
        self.requests: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.complete, methods=["POST"])])

    async def complete(self, request: Request) -> Response:
        self.requests.append({"body": await request.json(), "auth": request.headers.get("authorization")})
        if self.status != 200:
            return JSONResponse({"error": {"message": "model overloaded", "type": "server_error"}}, self.status)

        async def stream() -> AsyncIterator[str]:
            for piece in self.reply:
                yield chunk(piece)
                await asyncio.sleep(0.005)
            yield chunk(None, "stop")
            yield "data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")


async def test_tokens_stream_from_an_openai_compatible_endpoint() -> None:
    endpoint = FakeEndpoint(["The", " lobby", " opens", " at", " nine", "."])
    async with run_uvicorn(endpoint.app) as port:
        model = OpenAICompatibleModel(f"http://127.0.0.1:{port}/v1", "llama3", "secret-key")
        await model.start()
        pieces = [p async for p in model.stream([{"role": "user", "content": "When?"}], threading.Event())]
        await model.stop()
    assert "".join(pieces) == "The lobby opens at nine."
    request = endpoint.requests[0]
    assert request["body"]["model"] == "llama3" and request["body"]["stream"] is True
    assert request["body"]["messages"] == [{"role": "user", "content": "When?"}]
    assert request["auth"] == "Bearer secret-key"


async def test_cancelling_stops_the_stream_at_the_next_token() -> None:
    endpoint = FakeEndpoint(["word "] * 200)
    async with run_uvicorn(endpoint.app) as port:
        model = OpenAICompatibleModel(f"http://127.0.0.1:{port}/v1", "m", None)
        await model.start()
        cancel = threading.Event()
        pieces = []
        async for piece in model.stream([{"role": "user", "content": "Go on"}], cancel):
            pieces.append(piece)
            if len(pieces) == 3:
                cancel.set()
        await model.stop()
    assert 3 <= len(pieces) <= 4


async def test_an_endpoint_error_is_a_language_model_error_without_secrets() -> None:
    endpoint = FakeEndpoint([], status=503)
    async with run_uvicorn(endpoint.app) as port:
        model = OpenAICompatibleModel(f"http://127.0.0.1:{port}/v1", "m", "sk-very-secret")
        await model.start()
        with pytest.raises(LanguageModelError) as failure:
            async for _ in model.stream([{"role": "user", "content": "Hi"}], threading.Event()):
                pass
        await model.stop()
    assert "sk-very-secret" not in str(failure.value)


async def test_the_local_pipeline_speaks_what_the_endpoint_answers() -> None:
    from presence.config import Settings
    from presence.engines.base import SessionOptions, Transcript
    from presence.engines.local.engine import LocalEngine
    from presence.media import AudioChunk
    from tests.local.test_local_engine import ask

    endpoint = FakeEndpoint(["Breakfast", " is", " served", " until", " ten", "."])
    async with run_uvicorn(endpoint.app) as port:
        engine = LocalEngine(Settings(engine="local", llm_url=f"http://127.0.0.1:{port}/v1", llm_model="served"))
        await engine.start()
        session = await engine.open_session(SessionOptions("t"))
        outputs = await ask(session, 1, "When is breakfast?", speculate=False)
        await session.close()
        await engine.stop()
    agent = [o for o in outputs if isinstance(o, Transcript) and o.role == "agent" and o.final]
    assert agent[-1].text == "Breakfast is served until ten."
    assert sum(len(o.samples) for o in outputs if isinstance(o, AudioChunk)) > 22050 // 2
    assert endpoint.requests[0]["body"]["messages"][0]["role"] == "system"
