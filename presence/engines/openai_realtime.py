"""OpenAI Realtime as a presence engine, through the official ``openai`` SDK's realtime client.

The model hears the user's audio itself (no separate transcription step) and answers with
speech. presence's own VAD and turn machine drive it: the model's turn detection is off,
audio is streamed from the start of each user turn (with a short pre-roll), and the turn is
committed with ``response.create`` the moment presence confirms it. A barge-in cancels the
response and truncates the assistant's item at the position the user actually heard, so
the model's memory of the conversation matches the user's. Only a response still being
generated is cancelled (generation usually outruns playback); when ``response.done`` crosses
the cancel on the wire, the service's ``response_cancel_not_active`` is expected and ignored.

Speculation is not used: a committed user item cannot be taken back cheaply, so the reply
starts at confirmation (see docs/engines/openai.md). Tool calls are out of scope: each is
answered with an error result so the conversation goes on.

The connection is made in the background with capped exponential backoff and remade after a
drop (the server-side conversation is then new). While there is no connection, a confirmed
turn ends at once with an ``engine_unavailable`` error, never a hang. A refused key (HTTP
401/403 at the handshake), an unknown model or a rejected ``session.update`` (an ``error``
before ``session.updated``) fails the session with ``engine_misconfigured`` and is not
retried; ``check`` asks the models endpoint at start-up. The API key is only ever in the
SDK's Authorization header: every message this module reports is scrubbed of it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
from collections import deque
from typing import Any, Final

import numpy as np

from presence.audio.pcm import StreamResampler, float_to_s16le
from presence.config import Settings
from presence.engines.base import (
    Engine,
    EngineError,
    Interrupt,
    ReplyEnd,
    SessionOptions,
    Transcript,
    TurnEvent,
    TurnEventKind,
)
from presence.engines.cloud import (
    CloudSession,
    EngineMisconfigured,
    PreRoll,
    backoff_s,
    describe,
    keep_secret,
    refused_handshake,
    require_sdk,
    scrub,
)
from presence.media import INPUT_SAMPLE_RATE, AudioChunk, InputAudio

log = logging.getLogger(__name__)

MODEL_RATE: Final = 24_000  # the Realtime API's PCM16 rate, both ways
#: The oldest SDK with every type and call this engine uses (pyproject.toml pins the same).
SDK_MINIMUM: Final = ("openai", (1, 107))
DEFAULT_PERSONA: Final = "You are a friendly concierge. Answer in one or two short spoken sentences."
TOOL_ERROR: Final = '{"error": "tools are not available in this conversation"}'
DEFAULT_MODEL: Final = "gpt-realtime-2.1"
DEFAULT_TRANSCRIPTION_MODEL: Final = "gpt-live-transcribe"
CANCEL_NOT_ACTIVE: Final = "response_cancel_not_active"  # the cancel crossed response.done


class SetupRefused(Exception):
    """The service answered the session's configuration with an error: no retry can help."""


class OpenAIRealtimeEngine(Engine):
    name = "openai"
    hears_audio = True
    phoneme_timings = False

    def __init__(
        self,
        api_key: str,
        model: str = DEFAULT_MODEL,
        voice: str = "alloy",
        persona: str | None = None,
        base_url: str | None = None,
        connect_timeout_s: float = 10.0,
        transcription_model: str = DEFAULT_TRANSCRIPTION_MODEL,
    ) -> None:
        if not api_key:
            raise ValueError("the OpenAI Realtime engine needs an API key (OPENAI_API_KEY)")
        self._api_key = api_key
        keep_secret(api_key)
        self.model = model
        self.voice = voice
        self.persona = persona or DEFAULT_PERSONA
        self.base_url = base_url
        self.connect_timeout_s = connect_timeout_s
        self.transcription_model = transcription_model
        self.sessions: list[OpenAIRealtimeSession] = []

    def client(self) -> Any:
        from openai import AsyncOpenAI

        return AsyncOpenAI(api_key=self._api_key, base_url=self.base_url, max_retries=0)

    async def check(self) -> None:
        """Ask the models endpoint once whether the configured model exists for this key.

        Raises ``EngineMisconfigured`` when the service says no; a service out of reach is
        only logged (the sessions retry by themselves)."""
        import openai

        client = self.client()
        try:
            await asyncio.wait_for(client.models.retrieve(self.model), self.connect_timeout_s)
        except (openai.NotFoundError, openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise EngineMisconfigured(
                f"OpenAI model {self.model!r}: the service refused it: {scrub(str(exc.message))}"
            ) from None
        except Exception as exc:
            log.warning("could not check OpenAI model %r: %s", self.model, describe(exc))
        finally:
            await client.close()

    async def open_session(self, options: SessionOptions) -> OpenAIRealtimeSession:
        session = OpenAIRealtimeSession(self, options.persona or self.persona)
        session.start()
        return session


class OpenAIRealtimeSession(CloudSession):
    task_name = "openai-realtime"

    def __init__(self, engine: OpenAIRealtimeEngine, persona: str) -> None:
        super().__init__(engine.sessions)
        self.engine = engine
        self.persona = persona
        self._connection: Any = None
        self._resampler = StreamResampler(INPUT_SAMPLE_RATE, MODEL_RATE)
        self._pre_roll = PreRoll()
        self._streaming = False  # appending the user's audio (between speech onset and confirmation)
        self._turn_of_commit: deque[int] = deque()  # turns committed, awaiting their transcript
        self._pending_turns: deque[int] = deque()  # turns asked to respond, awaiting response.created
        self._turn_of_response: dict[str, int] = {}
        self._generating: set[str] = set()  # responses created and not yet done
        self._finished: tuple[int, str] | None = None  # (turn, audio item) of the last reply done
        self._reply_turn: int | None = None  # the turn whose response is in progress
        self._reply_item: str | None = None  # its assistant audio item (what a truncation names)
        self._reply_samples = 0  # model-rate samples of it sent to the session so far
        self._reply_text = ""

    # -- inputs ------------------------------------------------------------------------------

    async def push_audio(self, audio: InputAudio) -> None:
        if self._streaming:
            await self._append(audio.samples)
            return
        self._pre_roll.push(audio.samples)

    async def turn_event(self, event: TurnEvent) -> None:
        match event.kind:
            case TurnEventKind.USER_STARTED | TurnEventKind.TURN_RESUMED:
                # Resumed after an early release: the interrupt stopped the response; the rest
                # of the turn streams into a new input item.
                if not self._streaming:
                    self._streaming = True
                    await self._append(self._pre_roll.take())
            case TurnEventKind.TURN_CONFIRMED:
                self._streaming = False
                await self._respond(event.turn_id)
            case TurnEventKind.USER_PAUSED | TurnEventKind.TURN_ABANDONED:
                pass  # no speculation: nothing was committed yet

    async def interrupt(self, interrupt: Interrupt) -> None:
        self._forget(interrupt.turn_id)
        if self._reply_turn == interrupt.turn_id:
            item = self._reply_item
            self._end_reply_tracking()
        elif self._finished is not None and self._finished[0] == interrupt.turn_id:
            item = self._finished[1]  # generated in full, still playing: truncate, nothing to cancel
        else:
            return
        heard_ms = interrupt.heard_samples * 1000 // MODEL_RATE
        if any(self._turn_of_response.get(r) == interrupt.turn_id for r in self._generating):
            await self._send({"type": "response.cancel"})  # a finished response cannot be cancelled
        if item is not None:
            # The model forgets what the user never heard.
            await self._send(
                {"type": "conversation.item.truncate", "item_id": item, "content_index": 0, "audio_end_ms": heard_ms}
            )

    # -- talking to the model ------------------------------------------------------------------

    async def _append(self, samples: np.ndarray) -> None:
        if not self._connected.is_set():
            return  # not connected: the turn will end with an error when it is confirmed
        pcm = float_to_s16le(self._resampler.process(samples))
        if pcm:
            await self._send({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode("ascii")})

    async def _respond(self, turn_id: int) -> None:
        if not self._connected.is_set():
            await self._fail_unreachable(turn_id, "the OpenAI Realtime service")
            return
        tail = float_to_s16le(self._resampler.flush())
        self._resampler = StreamResampler(INPUT_SAMPLE_RATE, MODEL_RATE)
        if tail:
            await self._send({"type": "input_audio_buffer.append", "audio": base64.b64encode(tail).decode("ascii")})
        self._turn_of_commit.append(turn_id)
        self._pending_turns.append(turn_id)
        await self._send({"type": "input_audio_buffer.commit"})
        await self._send({"type": "response.create"})

    async def _send(self, event: dict[str, Any]) -> None:
        connection = self._connection
        if connection is None:
            return
        try:
            await connection.send(event)
        except Exception as exc:  # a dead socket: the receive loop notices and reconnects
            log.debug("send failed: %s", scrub(str(exc)))

    async def _run(self) -> None:
        """Connect, configure, receive until the socket drops; again, with backoff."""
        attempt = 0
        while not self._closed:
            try:
                await self._connect()
            except Exception as exc:
                refusal = str(exc) if isinstance(exc, SetupRefused) else refused_handshake(exc)
                if refusal is not None:
                    await self._disconnect()
                    await self._misconfigured(f"OpenAI Realtime refused model {self.engine.model!r}: {refusal}")
                    return
                await self._disconnect()
                self.connect_failures += 1
                delay = backoff_s(attempt)
                attempt += 1
                log.warning("OpenAI Realtime connect failed (%s); retrying in %.2f s", describe(exc), delay)
                await asyncio.sleep(delay)
                continue
            attempt = 0
            try:
                async for event in self._connection:
                    await self._on_event(event)
                reason = "the service closed the connection"
            except Exception as exc:
                reason = f"the connection failed: {describe(exc)}"
            await self._disconnect()
            log.warning("OpenAI Realtime: %s; reconnecting", reason)
            await self._abandon_replies(reason)

    async def _connect(self) -> None:
        """Open the socket, configure the session and wait until the service accepts it."""
        manager = self.engine.client().realtime.connect(model=self.engine.model)
        connection = await asyncio.wait_for(manager.enter(), self.engine.connect_timeout_s)
        self._connection = connection
        update = {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "model": self.engine.model,
                "instructions": self.persona,
                "output_modalities": ["audio"],
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": MODEL_RATE},
                        "transcription": {"model": self.engine.transcription_model},
                        "turn_detection": None,  # presence decides when the user is done
                    },
                    "output": {"format": {"type": "audio/pcm", "rate": MODEL_RATE}, "voice": self.engine.voice},
                },
            },
        }
        try:
            await connection.send(update)
        except Exception as exc:  # closed already: the service may have said why just before
            log.debug("session.update not sent: %s", describe(exc))
        await asyncio.wait_for(self._accepted(connection), self.engine.connect_timeout_s)
        self._connected.set()

    @staticmethod
    async def _accepted(connection: Any) -> None:
        """Wait for ``session.updated``; an ``error`` before it means the setup was refused."""
        while True:
            event = await connection.recv()
            kind = getattr(event, "type", "")
            if kind == "session.updated":
                return
            if kind == "error":
                error = event.error
                raise SetupRefused(scrub(f"{getattr(error, 'code', None) or error.type}: {error.message}"))

    async def _disconnect(self) -> None:
        self._connected.clear()
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()

    # -- what the model says -----------------------------------------------------------------

    async def _on_event(self, event: Any) -> None:
        kind = getattr(event, "type", "")
        if kind == "response.created":
            self._generating.add(event.response.id)
            turn = self._pending_turns.popleft() if self._pending_turns else self._reply_turn
            if turn is not None:
                self._turn_of_response[event.response.id] = turn
                self._reply_turn = turn
                self._reply_item, self._reply_samples, self._reply_text = None, 0, ""
        elif kind == "response.output_audio.delta":
            turn = self._live_turn(event.response_id)
            if turn is None:
                return
            self._reply_item = self._reply_item or event.item_id
            pcm = np.frombuffer(base64.b64decode(event.delta), dtype="<i2")
            samples = (pcm.astype(np.float32) / 32768.0).astype(np.float32)
            self._reply_samples += len(samples)
            await self._emit(AudioChunk(turn, samples, MODEL_RATE))
        elif kind == "response.output_audio_transcript.delta":
            turn = self._live_turn(event.response_id)
            if turn is not None:
                self._reply_text += event.delta
                await self._emit(Transcript("agent", self._reply_text.strip(), False, turn))
        elif kind == "response.output_audio_transcript.done":
            turn = self._live_turn(event.response_id)
            if turn is not None:
                await self._emit(Transcript("agent", (event.transcript or self._reply_text).strip(), True, turn))
        elif kind == "conversation.item.input_audio_transcription.completed":
            if self._turn_of_commit:
                turn = self._turn_of_commit.popleft()
                await self._emit(Transcript("user", (event.transcript or "").strip(), True, turn))
        elif kind == "response.output_item.done" and getattr(event.item, "type", "") == "function_call":
            await self._refuse_tool(event.item)
        elif kind == "response.done":
            await self._response_done(event.response)
        elif kind == "error":
            await self._on_error(event.error)

    def _live_turn(self, response_id: str | None) -> int | None:
        turn = self._turn_of_response.get(response_id or "")
        return None if turn is None or turn in self._dropped else turn

    async def _refuse_tool(self, item: Any) -> None:
        """Tools are out of scope: answer the call with an error so the model can go on."""
        turn = self._reply_turn
        await self._send(
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": item.call_id, "output": TOOL_ERROR},
            }
        )
        if turn is not None and turn not in self._dropped:
            self._pending_turns.appendleft(turn)  # the follow-up response belongs to the same turn
            await self._send({"type": "response.create"})

    async def _response_done(self, response: Any) -> None:
        self._generating.discard(getattr(response, "id", "") or "")
        turn = self._turn_of_response.pop(getattr(response, "id", "") or "", None)
        if turn is None or turn in self._dropped:
            return
        if self._pending_turns and self._pending_turns[0] == turn:
            return  # a tool call was refused: the turn's real reply is on its way
        status = getattr(response, "status", "completed")
        if self._reply_turn == turn and self._reply_item is not None:
            self._finished = (turn, self._reply_item)
        self._end_reply_tracking()
        if status == "failed":
            await self._fail_turn(turn, "engine_error", "the OpenAI Realtime response failed")
            return
        await self._emit(ReplyEnd(turn, "done"))

    async def _on_error(self, error: Any) -> None:
        """An error mid-reply ends that turn (its response is abandoned); otherwise it is shown.
        A cancel that crossed ``response.done`` is not an error worth a word."""
        if getattr(error, "code", None) == CANCEL_NOT_ACTIVE:
            log.debug("OpenAI Realtime: the cancelled response had already finished")
            return
        message = scrub(str(getattr(error, "message", "") or error))
        log.warning("OpenAI Realtime error: %s", message)
        turn = self._reply_turn if self._reply_turn is not None else (self._pending_turns or [None])[0]
        if turn is None or turn in self._dropped:
            await self._emit(EngineError(f"OpenAI Realtime: {message}", None, code="engine_error"))
            return
        self._dropped.add(turn)  # whatever else arrives for this response is stale
        if self._pending_turns and self._pending_turns[0] == turn:
            self._pending_turns.popleft()
        self._end_reply_tracking()
        await self._fail_turn(turn, "engine_error", f"OpenAI Realtime: {message}")

    async def _abandon_replies(self, reason: str) -> None:
        """The socket dropped: every turn still waiting for words ends now, with an error."""
        turns = {t for t in (self._reply_turn, *self._pending_turns, *self._turn_of_response.values()) if t is not None}
        self._pending_turns.clear()
        self._turn_of_commit.clear()
        self._turn_of_response.clear()
        self._generating.clear()
        self._finished = None  # its item belonged to the conversation that just ended
        self._end_reply_tracking()
        for turn in sorted(turns - self._dropped):
            await self._fail_turn(turn, "engine_disconnected", f"OpenAI Realtime: {reason}")

    def _end_reply_tracking(self) -> None:
        self._reply_turn, self._reply_item, self._reply_samples, self._reply_text = None, None, 0, ""


def create_engine(settings: Settings) -> OpenAIRealtimeEngine:
    from presence.engines import EngineUnavailable

    key = os.environ.get("OPENAI_API_KEY", "")
    if not key:
        raise EngineUnavailable("the openai engine needs an API key: set OPENAI_API_KEY")
    require_sdk(*SDK_MINIMUM, "openai")
    return OpenAIRealtimeEngine(
        key,
        model=settings.openai_model,
        voice=settings.openai_voice,
        persona=settings.persona,
        base_url=settings.openai_base_url,
        transcription_model=settings.openai_transcription_model,
    )
