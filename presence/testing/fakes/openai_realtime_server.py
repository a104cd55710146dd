"""A local stand-in for the OpenAI Realtime API: the real wire events, a scripted model.

It speaks enough of the Realtime protocol (JSON events over a WebSocket at
``/v1/realtime?model=...``) for the official ``openai`` SDK to hold a conversation: it takes
``session.update``, buffers ``input_audio_buffer.append`` audio, answers ``commit`` with a
user transcript, and ``response.create`` with audio deltas (24 kHz PCM16, a deterministic
voiced signal), transcript deltas and ``response.done``; it honours ``response.cancel`` and
``conversation.item.truncate``, and can be told to fail in the ways a cloud service does.
Everything it was sent is recorded for the tests to inspect.

It is as strict as the service where presence can get things wrong: it serves only the
models it lists (another: an ``error`` event ``model_not_found`` in the service's words, then
the socket closes; ``GET /v1/models/{id}`` answers 404 alike), optionally only some API keys
(HTTP 401 ``invalid_api_key`` at the handshake), rejects a ``session.update`` naming a
transcription model it does not know, and answers ``response.cancel`` without an active
response with the error ``response_cancel_not_active``. ``done_crosses_cancel`` makes the
race real: generation has finished, but ``response.done`` is still on its way when the
cancel arrives.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from presence.engines.scripted import synth_voice

RATE = 24_000
REPLY = "Happy to help with that."
#: The Realtime models the fake serves (docs/engines/openai.md).
REALTIME_MODELS = ("gpt-realtime-2.1", "gpt-realtime-2.1-mini", "gpt-realtime-2")
#: Transcription models a Realtime session accepts for the user's side.
TRANSCRIPTION_MODELS = ("gpt-live-transcribe", "gpt-realtime-whisper", "gpt-transcribe")


def model_not_found(model: str) -> dict[str, Any]:
    return {
        "type": "invalid_request_error",
        "code": "model_not_found",
        "message": f"The model `{model}` does not exist or you do not have access to it.",
        "param": None,
        "event_id": None,
    }


@dataclass
class FakeModel:
    """How the fake behaves; change it between turns from a test."""

    think_ms: int = 30
    reply_ms: int = 600
    chunk_ms: int = 40
    realtime: bool = False  # pace deltas in real time, or send them as fast as possible
    refuse_connections: int = 0  # answer this many handshakes with HTTP 503 first
    fail: str | None = None  # "error" | "close" mid-reply, or "tool" (ask for a function call)
    fail_after_chunks: int = 3
    models: tuple[str, ...] = REALTIME_MODELS  # another model: model_not_found, then close
    api_keys: tuple[str, ...] | None = None  # None: any key; else others get HTTP 401
    done_crosses_cancel: bool = False  # response.done waits for a cancel that comes too late


@dataclass
class Recorded:
    connections: int = 0
    authorizations: list[str] = field(default_factory=list)
    session_updates: list[dict[str, Any]] = field(default_factory=list)
    appended_samples: int = 0
    commits: int = 0
    responses: int = 0
    cancels: int = 0
    truncations: list[dict[str, Any]] = field(default_factory=list)
    tool_outputs: list[dict[str, Any]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    first_audio_sent: list[float] = field(default_factory=list)  # time.monotonic(), one per reply
    errors_sent: list[str] = field(default_factory=list)  # the codes of the error events sent
    models_asked: list[str] = field(default_factory=list)  # the ?model= of each connection
    model_gets: list[str] = field(default_factory=list)  # GET /v1/models/{id}


class FakeRealtimeServer:
    def __init__(self, model: FakeModel | None = None) -> None:
        self.model = model or FakeModel()
        self.recorded = Recorded()
        self._ids = itertools.count(1)
        self.port = 0

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FakeRealtimeServer]:
        async with serve(self._handle, "127.0.0.1", 0, process_request=self._check) as server:
            self.port = server.sockets[0].getsockname()[1]
            yield self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):04d}"

    def _key_refused(self, request: Request) -> bool:
        keys = self.model.api_keys
        return keys is not None and request.headers.get("Authorization", "").removeprefix("Bearer ") not in keys

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path.startswith("/v1/models/"):
            return self._get_model(connection, request)
        if not request.path.startswith("/v1/realtime"):
            return connection.respond(404, "no such endpoint\n")
        if self.model.refuse_connections > 0:
            self.model.refuse_connections -= 1
            return connection.respond(503, "overloaded, try again\n")
        self.recorded.authorizations.append(request.headers.get("Authorization", ""))
        if self._key_refused(request):
            return _json(connection, 401, {"error": BAD_KEY})
        self.recorded.models_asked.append(parse_qs(urlsplit(request.path).query).get("model", [""])[0])
        return None

    def _get_model(self, connection: ServerConnection, request: Request) -> Response:
        """``GET /v1/models/{id}``: what ``client.models.retrieve`` asks."""
        name = urlsplit(request.path).path.removeprefix("/v1/models/")
        self.recorded.model_gets.append(name)
        if self._key_refused(request):
            return _json(connection, 401, {"error": BAD_KEY})
        if name not in self.model.models:
            return _json(connection, 404, {"error": model_not_found(name)})
        return _json(connection, 200, {"id": name, "object": "model", "created": 1_790_000_000, "owned_by": "system"})

    async def _handle(self, ws: ServerConnection) -> None:
        self.recorded.connections += 1
        state = _Connection(self, ws)
        model = self.recorded.models_asked[-1] if self.recorded.models_asked else ""
        if model not in self.model.models:
            await state.error(model_not_found(model))
            await ws.close(1008, "invalid_request_error")
            return
        await state.send({"type": "session.created", "session": {"id": self._id("sess"), "type": "realtime"}})
        try:
            async for message in ws:
                await state.on_event(json.loads(message))
        except ConnectionClosed:
            pass
        finally:
            state.stop()


BAD_KEY = {
    "message": "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
    "type": "invalid_request_error",
    "param": None,
    "code": "invalid_api_key",
}


def _json(connection: ServerConnection, status: int, body: dict[str, Any]) -> Response:
    response = connection.respond(status, json.dumps(body))
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    return response


class _Connection:
    def __init__(self, server: FakeRealtimeServer, ws: ServerConnection) -> None:
        self.server = server
        self.ws = ws
        self.buffer = 0
        self.reply: asyncio.Task[None] | None = None
        self.response_id: str | None = None
        self.active: str | None = None  # the response being generated, until it is done
        self.cancel_seen = asyncio.Event()

    async def send(self, event: dict[str, Any]) -> None:
        event.setdefault("event_id", self.server._id("event"))
        await self.ws.send(json.dumps(event))

    async def error(self, error: dict[str, Any]) -> None:
        self.server.recorded.errors_sent.append(str(error.get("code")))
        await self.send({"type": "error", "error": error})

    def stop(self) -> None:
        if self.reply is not None:
            self.reply.cancel()

    async def on_event(self, event: dict[str, Any]) -> None:
        rec, kind = self.server.recorded, event.get("type", "")
        rec.events.append(kind)
        if kind == "session.update":
            rec.session_updates.append(event["session"])
            transcription = event["session"].get("audio", {}).get("input", {}).get("transcription") or {}
            model = transcription.get("model")
            if model is not None and model not in TRANSCRIPTION_MODELS:
                await self.error(
                    {
                        "type": "invalid_request_error",
                        "code": "invalid_value",
                        "message": f"Invalid value: '{model}'. Supported values are: "
                        + ", ".join(f"'{m}'" for m in TRANSCRIPTION_MODELS)
                        + ".",
                        "param": "session.audio.input.transcription.model",
                        "event_id": event.get("event_id"),
                    }
                )
                return
            await self.send({"type": "session.updated", "session": event["session"]})
        elif kind == "input_audio_buffer.append":
            samples = len(base64.b64decode(event["audio"])) // 2
            self.buffer += samples
            rec.appended_samples += samples
        elif kind == "input_audio_buffer.commit":
            rec.commits += 1
            item = self.server._id("item")
            heard_s = self.buffer / RATE
            self.buffer = 0
            await self.send({"type": "input_audio_buffer.committed", "item_id": item, "previous_item_id": None})
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item,
                    "content_index": 0,
                    "transcript": f"{heard_s:.1f} seconds of speech",
                }
            )
        elif kind == "response.create":
            rec.responses += 1
            self.response_id = self.active = self.server._id("resp")
            self.reply = asyncio.create_task(self._respond(self.response_id))
        elif kind == "response.cancel":
            rec.cancels += 1
            if self.active is not None and self.reply is not None and not self.reply.done():
                self.reply.cancel()
                self.active = None
                await self._done(self.response_id or "", "cancelled")
            else:
                await self.error(
                    {
                        "type": "invalid_request_error",
                        "code": "response_cancel_not_active",
                        "message": "Cancellation failed: no active response found.",
                        "param": None,
                        "event_id": event.get("event_id"),
                    }
                )
                self.cancel_seen.set()
        elif kind == "conversation.item.truncate":
            rec.truncations.append(event)
            await self.send(
                {
                    "type": "conversation.item.truncated",
                    "item_id": event["item_id"],
                    "content_index": 0,
                    "audio_end_ms": event["audio_end_ms"],
                }
            )
        elif kind == "conversation.item.create" and event["item"].get("type") == "function_call_output":
            rec.tool_outputs.append(event["item"])

    async def _done(self, response_id: str, status: str) -> None:
        await self.send(
            {
                "type": "response.done",
                "response": {"id": response_id, "object": "realtime.response", "status": status, "output": []},
            }
        )

    async def _respond(self, response_id: str) -> None:
        self.active = response_id
        try:
            await self._generate(response_id)
        finally:
            if self.active == response_id:
                self.active = None

    async def _generate(self, response_id: str) -> None:
        model = self.server.model
        await self.send({"type": "response.created", "response": {"id": response_id, "status": "in_progress"}})
        await asyncio.sleep(model.think_ms / 1000)
        if model.fail == "tool" and not self.server.recorded.tool_outputs:  # once, then answer
            call = {
                "id": self.server._id("item"),
                "type": "function_call",
                "call_id": self.server._id("call"),
                "name": "lookup_weather",
                "arguments": '{"city": "Paris"}',
            }
            await self.send({"type": "response.output_item.done", "response_id": response_id, "item": call})
            await self.send(
                {"type": "response.done", "response": {"id": response_id, "status": "completed", "output": [call]}}
            )
            return
        item = self.server._id("item")
        await self.send(
            {
                "type": "response.output_item.added",
                "response_id": response_id,
                "output_index": 0,
                "item": {"id": item, "type": "message", "role": "assistant"},
            }
        )
        audio = synth_voice(model.reply_ms, RATE, seed=3)
        step = model.chunk_ms * RATE // 1000
        words = REPLY.split()
        loop = asyncio.get_running_loop()
        start = loop.time()
        chunks = range(0, len(audio), step)
        for index, offset in enumerate(chunks):
            if model.fail and index == model.fail_after_chunks:
                if model.fail == "error":
                    await self.send(
                        {
                            "type": "error",
                            "error": {
                                "type": "server_error",
                                "code": "internal_error",
                                "message": "The server had an error.",
                            },
                        }
                    )
                    await self._done(response_id, "failed")
                    return
                if model.fail == "close":
                    await self.ws.close(1011, "internal error")
                    return
            pcm = (np.clip(audio[offset : offset + step], -1, 1) * 32767).astype("<i2").tobytes()
            if index == 0:
                self.server.recorded.first_audio_sent.append(time.monotonic())
            await self.send(
                {
                    "type": "response.output_audio.delta",
                    "response_id": response_id,
                    "item_id": item,
                    "output_index": 0,
                    "content_index": 0,
                    "delta": base64.b64encode(pcm).decode(),
                }
            )
            share = words[index * len(words) // len(chunks) : (index + 1) * len(words) // len(chunks)]
            if share:
                await self.send(
                    {
                        "type": "response.output_audio_transcript.delta",
                        "response_id": response_id,
                        "item_id": item,
                        "output_index": 0,
                        "content_index": 0,
                        "delta": " ".join(share) + " ",
                    }
                )
            if model.realtime:
                await asyncio.sleep(max(0.0, start + (offset + step) / RATE - loop.time()))
            else:
                await asyncio.sleep(0)
        await self.send(
            {
                "type": "response.output_audio.done",
                "response_id": response_id,
                "item_id": item,
                "output_index": 0,
                "content_index": 0,
            }
        )
        if model.done_crosses_cancel:  # generation is over; response.done will be late
            self.active = None
        await self.send(
            {
                "type": "response.output_audio_transcript.done",
                "response_id": response_id,
                "item_id": item,
                "output_index": 0,
                "content_index": 0,
                "transcript": REPLY,
            }
        )
        if model.done_crosses_cancel:
            await self.cancel_seen.wait()
        await self._done(response_id, "completed")
