"""A local stand-in for the Gemini Live API (BidiGenerateContent): real wire messages, a scripted model.

google-genai always speaks ``wss://``, so the fake serves TLS with a throwaway self-signed
certificate made at start-up; ``client_ssl`` trusts exactly that certificate. It takes the
``setup`` message (answering ``setupComplete``), ``realtime_input`` audio and explicit
``activity_start`` / ``activity_end`` (or, when the setup leaves automatic activity detection
on, finds the user's turns itself with an energy detector and ``silence_duration_ms``, 500 ms
unless the setup says otherwise), and answers each finished user activity with
``serverContent``: an input transcription, audio parts (24 kHz PCM16, a deterministic voiced
signal), output transcriptions, ``generationComplete`` and ``turnComplete``. A new
``activity_start`` during a reply interrupts it (``interrupted``). It hands out session
resumption handles, and can refuse connections, fail mid-reply, close the socket, send
``goAway`` or ask for a tool call. The client sends snake_case keys and URL-safe base64; the
fake answers in the API's camelCase with standard base64, as the service does.

It is as strict as the service where presence can get things wrong: it serves only the
models it lists (another name: close 1008 with the service's "not found" text, also from
``GET /v1beta/models/{name}``), optionally only some API keys (close 1007 "API key not
valid"), and the 3.x models refuse what they dropped (proactive audio off, affective dialog,
``thinking_level``: close 1007). On its own clock (``advance``), a connection gets ``goAway``
with the time left and is closed when that runs out, and without context window compression
a session ends at its limit; resumption handles carry a session across connections. The
session-limit close reason is the fake's own wording. ``setup_gate`` holds setups (a slow
service), so a test can act while a client waits for its new connection.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from presence.engines.scripted import synth_voice
from presence.testing import tls

RATE = 24_000
REPLY = "Glad you asked, here it is."
PATH_PREFIX = "/ws/google.ai.generativelanguage."
MODELS_PREFIX = "/v1beta/models/"


def self_signed_tls() -> tuple[ssl.SSLContext, ssl.SSLContext, Path]:
    """(server context, client context that trusts only it, its certificate file) for 127.0.0.1."""
    cert, key = tls.throwaway_certificate("fake-gemini-tls-")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    return server, ssl.create_default_context(cafile=str(cert)), cert


#: The Live models the fake serves, as the service lists them (docs/engines/gemini.md).
LIVE_MODELS = ("gemini-3.8-live", "gemini-3.8-live-extended-thinking", "gemini-3.1-flash-live-preview")
#: Models that take ``thinking_level``; the others refuse it.
THINKING_MODELS = frozenset({"gemini-3.8-live-extended-thinking"})
#: 3.x Live models: proactive audio always on, affective dialog removed.
GEN3_PREFIX = "gemini-3"
# The service's words for what it refuses (close code, reason), as the SDK surfaces them.
UNKNOWN_MODEL = (
    "models/{model} is not found for API version v1beta, or is not supported for bidiGenerateContent. "
    "Call ListModels to see the list of available models and their supported methods."
)
BAD_KEY = "API key not valid. Please pass a valid API key."
INVALID_ARGUMENT = "Request contains an invalid argument."


@dataclass
class FakeModel:
    think_ms: int = 30
    reply_ms: int = 600
    chunk_ms: int = 40
    realtime: bool = False
    refuse_connections: int = 0
    fail: str | None = None  # "error" | "close" | "go_away" mid-reply, or "tool"
    fail_after_chunks: int = 3
    default_silence_ms: int = 500  # automatic activity detection: end of speech after this
    models: tuple[str, ...] = LIVE_MODELS  # any other model name is refused (1008)
    api_keys: tuple[str, ...] | None = None  # None: any key; else only these (others: 1007)
    silent: bool = False  # the model chooses not to answer: turnComplete with no audio
    interrupted_with_turn_complete: bool = False  # one serverContent carries both
    # Limits on the fake's own clock (``FakeGeminiLive.advance``), None = unlimited.
    connection_limit_s: float | None = None  # a connection ends this long after it opened
    go_away_notice_s: float = 20.0  # goAway this long before a connection's end
    session_limit_s: float | None = None  # without context window compression, a session ends


@dataclass
class Recorded:
    connections: int = 0
    paths: list[str] = field(default_factory=list)
    api_keys: list[str] = field(default_factory=list)
    setups: list[dict[str, Any]] = field(default_factory=list)
    audio_samples: int = 0
    mime_types: set[str] = field(default_factory=set)
    activity_starts: int = 0
    activity_ends: int = 0
    tool_responses: list[dict[str, Any]] = field(default_factory=list)
    interrupted_replies: int = 0
    first_audio_sent: list[float] = field(default_factory=list)  # time.monotonic(), one per reply
    refusals: list[tuple[int, str]] = field(default_factory=list)  # (close code, reason) at setup
    session_of_connection: list[int] = field(default_factory=list)  # session id per accepted setup
    go_aways: int = 0
    closed_at_limit: int = 0  # connections the fake ended because their time was up
    sessions_expired: int = 0  # sessions ended by the uncompressed session limit
    model_gets: list[str] = field(default_factory=list)  # GET models/{name}


@dataclass
class _Session:
    """A conversation that outlives connections through resumption handles."""

    id: int
    started_s: float
    compressed: bool
    expired: bool = False


class FakeGeminiLive:
    def __init__(self, model: FakeModel | None = None) -> None:
        self.model = model or FakeModel()
        self.recorded = Recorded()
        self.server_tls, self.client_ssl, self.cert_file = self_signed_tls()
        self._handles = itertools.count(1)
        self._session_ids = itertools.count(1)
        self.sessions_by_handle: dict[str, _Session] = {}
        self.conversations: set[_Conversation] = set()
        self.now_s = 0.0  # the fake's clock for its limits: moves only with ``advance``
        self.accepted = asyncio.Condition()  # notified at every accepted setup
        self.setup_gate: asyncio.Event | None = None  # when set here, setups wait until it is set
        self.setup_held = asyncio.Event()  # a setup is waiting at the gate
        self.port = 0

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FakeGeminiLive]:
        async with serve(self._handle, "127.0.0.1", 0, ssl=self.server_tls, process_request=self._check) as server:
            self.port = server.sockets[0].getsockname()[1]
            yield self

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass on the fake's clock: goAway, connections and sessions end on time."""
        self.now_s += seconds
        for conversation in list(self.conversations):
            await conversation.check_limits()

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path.startswith(MODELS_PREFIX):
            return self._get_model(connection, request)
        if not request.path.startswith(PATH_PREFIX):
            return connection.respond(404, "no such endpoint\n")
        if self.model.refuse_connections > 0:
            self.model.refuse_connections -= 1
            return connection.respond(503, "overloaded\n")
        self.recorded.paths.append(request.path)
        self.recorded.api_keys.append(request.headers.get("x-goog-api-key", ""))
        return None

    def _get_model(self, connection: ServerConnection, request: Request) -> Response:
        """``GET /v1beta/models/{name}``: what ``client.aio.models.get`` asks."""
        name = request.path[len(MODELS_PREFIX) :].split("?")[0]
        self.recorded.model_gets.append(name)
        keys = self.model.api_keys
        if keys is not None and request.headers.get("x-goog-api-key", "") not in keys:
            return _json(connection, 400, _google_error(400, BAD_KEY, "INVALID_ARGUMENT"))
        if name not in self.model.models:
            message = UNKNOWN_MODEL.format(model=name).replace("bidiGenerateContent", "GenerateContent")
            return _json(connection, 404, _google_error(404, message, "NOT_FOUND"))
        body = {
            "name": f"models/{name}",
            "version": "001",
            "displayName": name,
            "inputTokenLimit": 131072,
            "outputTokenLimit": 65536,
            "supportedGenerationMethods": ["bidiGenerateContent", "countTokens"],
        }
        return _json(connection, 200, body)

    async def _handle(self, ws: ServerConnection) -> None:
        self.recorded.connections += 1
        conversation = _Conversation(self, ws)
        self.conversations.add(conversation)
        try:
            async for message in ws:
                await conversation.on_message(json.loads(message))
        except ConnectionClosed:
            pass
        finally:
            self.conversations.discard(conversation)
            conversation.stop()


def _google_error(code: int, message: str, status: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


def _json(connection: ServerConnection, status: int, body: dict[str, Any]) -> Response:
    response = connection.respond(status, json.dumps(body))
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json; charset=UTF-8"
    return response


def _get(d: dict[str, Any], snake: str) -> Any:
    """A field by its snake_case name or its camelCase one."""
    parts = snake.split("_")
    return d.get(snake, d.get(parts[0] + "".join(p.title() for p in parts[1:])))


def setup_refusal(setup: dict[str, Any], models: tuple[str, ...]) -> tuple[int, str] | None:
    """(close code, reason) for a setup the service refuses, or None: the model must be one it
    serves, and the 3.x models refuse what they no longer support (proactive audio off,
    affective dialog, ``thinking_level`` outside the extended-thinking model)."""
    model = str(setup.get("model", "")).removeprefix("models/")
    if model not in models:
        return 1008, UNKNOWN_MODEL.format(model=model)
    generation = _get(setup, "generation_config") or {}
    if model.startswith(GEN3_PREFIX):
        proactivity = _get(setup, "proactivity") or {}
        if _get(proactivity, "proactive_audio") is False:
            return 1007, f"{INVALID_ARGUMENT} proactive_audio cannot be disabled for {model}."
        if _get(generation, "enable_affective_dialog") is not None:
            return 1007, f"{INVALID_ARGUMENT} enable_affective_dialog is not supported by {model}."
    thinking = _get(generation, "thinking_config") or {}
    if _get(thinking, "thinking_level") is not None and model not in THINKING_MODELS:
        return 1007, f"{INVALID_ARGUMENT} thinking_level is not supported by {model}."
    return None


SPEECH_RMS = 0.003  # the fake's own detector: 10 ms blocks louder than this (−50 dBFS) are speech
BLOCK = 160


class _Conversation:
    def __init__(self, fake: FakeGeminiLive, ws: ServerConnection) -> None:
        self.fake = fake
        self.ws = ws
        self.heard = 0  # samples of the current user activity
        self.reply: asyncio.Task[None] | None = None
        self.automatic = True  # the service's default: it detects activity itself
        self.silence_ms = fake.model.default_silence_ms
        self.in_speech = False
        self.speech_run = 0
        self.silence_run = 0
        self.session: _Session | None = None  # set by an accepted setup
        self.opened_s = fake.now_s
        self.warned = False  # goAway sent

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def _refuse(self, code: int, reason: str) -> None:
        reason = reason.encode()[:123].decode(errors="ignore")  # all a close frame holds, as for the service
        self.fake.recorded.refusals.append((code, reason))
        await self.ws.close(code, reason)

    async def _setup(self, setup: dict[str, Any]) -> None:
        fake, rec = self.fake, self.fake.recorded
        rec.setups.append(setup)
        if fake.setup_gate is not None:  # a slow service: the test decides when the setup completes
            fake.setup_held.set()
            await fake.setup_gate.wait()
        keys = fake.model.api_keys
        if keys is not None and rec.api_keys and rec.api_keys[-1] not in keys:
            await self._refuse(1007, BAD_KEY)
            return
        refusal = setup_refusal(setup, fake.model.models)
        if refusal is not None:
            await self._refuse(*refusal)
            return
        realtime_config = _get(setup, "realtime_input_config") or {}
        detection = _get(realtime_config, "automatic_activity_detection") or {}
        self.automatic = not detection.get("disabled", False)
        self.silence_ms = _get(detection, "silence_duration_ms") or fake.model.default_silence_ms
        handle = _get(_get(setup, "session_resumption") or {}, "handle")
        session = fake.sessions_by_handle.get(handle or "")
        if session is None or session.expired:  # no handle, or a dead one: a new conversation
            compressed = _get(setup, "context_window_compression") is not None
            session = _Session(next(fake._session_ids), fake.now_s, compressed)
        self.session = session
        self.opened_s = fake.now_s
        rec.session_of_connection.append(session.id)
        await self.send({"setupComplete": {}})
        async with fake.accepted:
            fake.accepted.notify_all()

    async def check_limits(self) -> None:
        """The fake's clock moved: announce the end of this connection, or end it, or its session."""
        model, now = self.fake.model, self.fake.now_s
        session = self.session
        if session is None:
            return
        session_limit = model.session_limit_s
        if session_limit is not None and not session.compressed and now - session.started_s >= session_limit:
            session.expired = True
            self.fake.recorded.sessions_expired += 1
            await self.ws.close(1011, "The session's time limit was reached.")
            return
        limit = model.connection_limit_s
        if limit is None:
            return
        age = now - self.opened_s
        if age >= limit:
            self.fake.recorded.closed_at_limit += 1
            await self.ws.close(1000, "")
        elif age >= limit - model.go_away_notice_s and not self.warned:
            self.warned = True
            self.fake.recorded.go_aways += 1
            await self.send({"goAway": {"timeLeft": f"{limit - age:g}s"}})

    def stop(self) -> None:
        if self.reply is not None:
            self.reply.cancel()

    async def on_message(self, message: dict[str, Any]) -> None:
        rec = self.fake.recorded
        if "setup" in message:
            await self._setup(message["setup"])
            return
        realtime = _get(message, "realtime_input")
        if realtime is not None:
            audio = realtime.get("audio")
            if audio:
                rec.mime_types.add(_get(audio, "mime_type"))
                pcm = base64.urlsafe_b64decode(audio["data"])
                samples = len(pcm) // 2
                self.heard += samples
                rec.audio_samples += samples
                if self.automatic:
                    await self._detect(np.frombuffer(pcm, "<i2").astype(np.float32) / 32768)
            if _get(realtime, "activity_start") is not None:
                rec.activity_starts += 1
                self.heard = 0
                await self._interrupt()
            if _get(realtime, "activity_end") is not None:
                rec.activity_ends += 1
                self.reply = asyncio.create_task(self._respond(self.heard))
            return
        tool = _get(message, "tool_response")
        if tool is not None:
            rec.tool_responses.append(tool)
            self.reply = asyncio.create_task(self._respond(0, after_tool=True))

    async def _detect(self, samples: np.ndarray) -> None:
        """Automatic activity detection: speech onset interrupts a reply, a long silence ends the turn."""
        for start in range(0, len(samples) - BLOCK + 1, BLOCK):
            loud = float(np.sqrt(np.mean(samples[start : start + BLOCK] ** 2))) > SPEECH_RMS
            if loud:
                self.speech_run += BLOCK
                self.silence_run = 0
                if not self.in_speech and self.speech_run >= 3 * BLOCK:
                    self.in_speech = True
                    self.heard = self.speech_run
                    await self._interrupt()
            else:
                self.speech_run = 0
                self.silence_run += BLOCK
                if self.in_speech and self.silence_run * 1000 >= self.silence_ms * 16_000:
                    self.in_speech = False
                    self.reply = asyncio.create_task(self._respond(self.heard - self.silence_run))

    async def _interrupt(self) -> None:
        if self.reply is not None and not self.reply.done():
            self.reply.cancel()
            self.fake.recorded.interrupted_replies += 1
            content: dict[str, Any] = {"interrupted": True}
            if self.fake.model.interrupted_with_turn_complete:
                content["turnComplete"] = True
            await self.send({"serverContent": content})

    async def _respond(self, heard_samples: int, after_tool: bool = False) -> None:
        model = self.fake.model
        if not after_tool:
            seconds = heard_samples / 16_000
            await self.send({"serverContent": {"inputTranscription": {"text": f"{seconds:.1f} seconds of speech"}}})
        await asyncio.sleep(model.think_ms / 1000)
        if model.fail == "tool" and not self.fake.recorded.tool_responses:
            call = {"id": "call-1", "name": "lookup_weather", "args": {"city": "Paris"}}
            await self.send({"toolCall": {"functionCalls": [call]}})
            return
        if model.silent:  # the model heard the turn and chose to say nothing
            await self._complete()
            return
        audio = synth_voice(model.reply_ms, RATE, seed=5)
        step = model.chunk_ms * RATE // 1000
        words = REPLY.split()
        chunks = range(0, len(audio), step)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for index, offset in enumerate(chunks):
            if model.fail and index == model.fail_after_chunks:
                if model.fail == "error":
                    await self.ws.close(1011, "Internal error encountered.")
                    return
                if model.fail == "close":
                    await self.ws.close(1000, "")
                    return
                if model.fail == "go_away":
                    await self.send({"goAway": {"timeLeft": "0s"}})
                    await self.ws.close(1000, "")
                    return
            pcm = (np.clip(audio[offset : offset + step], -1, 1) * 32767).astype("<i2").tobytes()
            if index == 0:
                self.fake.recorded.first_audio_sent.append(time.monotonic())
            part = {"inlineData": {"mimeType": f"audio/pcm;rate={RATE}", "data": base64.b64encode(pcm).decode()}}
            await self.send({"serverContent": {"modelTurn": {"parts": [part]}}})
            share = words[index * len(words) // len(chunks) : (index + 1) * len(words) // len(chunks)]
            if share:
                await self.send({"serverContent": {"outputTranscription": {"text": " ".join(share) + " "}}})
            if model.realtime:
                await asyncio.sleep(max(0.0, start + (offset + step) / RATE - loop.time()))
            else:
                await asyncio.sleep(0)
        await self._complete()

    async def _complete(self) -> None:
        """The end of a generation: a fresh resumption handle for the session, then turnComplete."""
        handle = f"handle-{next(self.fake._handles)}"
        if self.session is not None:
            self.fake.sessions_by_handle[handle] = self.session
        await self.send({"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}})
        await self.send({"serverContent": {"generationComplete": True}})
        await self.send({"serverContent": {"turnComplete": True}})
