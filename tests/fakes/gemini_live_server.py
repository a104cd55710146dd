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
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from presence.engines.scripted import synth_voice
from tests import tls

RATE = 24_000
REPLY = "Glad you asked, here it is."
PATH_PREFIX = "/ws/google.ai.generativelanguage."


def self_signed_tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context that trusts only it) for 127.0.0.1."""
    return tls.self_signed_tls("fake-gemini-tls-")


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


class FakeGeminiLive:
    def __init__(self, model: FakeModel | None = None) -> None:
        self.model = model or FakeModel()
        self.recorded = Recorded()
        self.server_tls, self.client_ssl = self_signed_tls()
        self._handles = itertools.count(1)
        self.port = 0

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FakeGeminiLive]:
        async with serve(self._handle, "127.0.0.1", 0, ssl=self.server_tls, process_request=self._check) as server:
            self.port = server.sockets[0].getsockname()[1]
            yield self

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        if not request.path.startswith(PATH_PREFIX):
            return connection.respond(404, "no such endpoint\n")
        if self.model.refuse_connections > 0:
            self.model.refuse_connections -= 1
            return connection.respond(503, "overloaded\n")
        self.recorded.paths.append(request.path)
        self.recorded.api_keys.append(request.headers.get("x-goog-api-key", ""))
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        self.recorded.connections += 1
        conversation = _Conversation(self, ws)
        try:
            async for message in ws:
                await conversation.on_message(json.loads(message))
        except ConnectionClosed:
            pass
        finally:
            conversation.stop()


def _get(d: dict[str, Any], snake: str) -> Any:
    """A field by its snake_case name or its camelCase one."""
    parts = snake.split("_")
    return d.get(snake, d.get(parts[0] + "".join(p.title() for p in parts[1:])))


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

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    def stop(self) -> None:
        if self.reply is not None:
            self.reply.cancel()

    async def on_message(self, message: dict[str, Any]) -> None:
        rec = self.fake.recorded
        if "setup" in message:
            setup = message["setup"]
            rec.setups.append(setup)
            realtime_config = _get(setup, "realtime_input_config") or {}
            detection = _get(realtime_config, "automatic_activity_detection") or {}
            self.automatic = not detection.get("disabled", False)
            self.silence_ms = _get(detection, "silence_duration_ms") or self.fake.model.default_silence_ms
            await self.send({"setupComplete": {}})
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
            await self.send({"serverContent": {"interrupted": True}})

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
        handle = f"handle-{next(self.fake._handles)}"
        await self.send({"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}})
        await self.send({"serverContent": {"generationComplete": True}})
        await self.send({"serverContent": {"turnComplete": True}})
