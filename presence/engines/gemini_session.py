"""One conversation with Gemini Live: presence's turns in, the model's speech out, and the
connection kept alive across drops, goAways and the service's time limits (the module
docstring of ``presence.engines.gemini`` tells the whole story)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np

from presence.audio.pcm import float_to_s16le
from presence.engines.base import Interrupt, ReplyEnd, Transcript, TurnEvent, TurnEventKind, TurnTaken
from presence.engines.cloud import CloudSession, PreRoll, backoff_s, describe, refused_handshake, scrub
from presence.media import INPUT_SAMPLE_RATE, AudioChunk, InputAudio

if TYPE_CHECKING:
    from presence.engines.gemini import GeminiLiveEngine

log = logging.getLogger(__name__)

MODEL_RATE: Final = 24_000  # Gemini Live's output PCM rate
INPUT_MIME: Final = f"audio/pcm;rate={INPUT_SAMPLE_RATE}"
#: Close codes with which the service refuses a setup: 1007 (bad key, invalid argument),
#: 1008 (no such model, or not a Live model).
REFUSED_CLOSE_CODES: Final = frozenset({1007, 1008})
TURN_AUDIO_LIMIT_SAMPLES: Final = 60 * INPUT_SAMPLE_RATE  # a turn's audio kept for a replay
MOVING: Final = "moving"  # ``_receive``'s answer after a goAway, once no reply is pending
TOOL_ERROR: Final = {"error": "tools are not available in this conversation"}

TurnMode = Literal["presence", "model"]


class GeminiLiveSession(CloudSession):
    task_name = "gemini-live"

    def __init__(self, engine: GeminiLiveEngine, persona: str) -> None:
        super().__init__(engine.sessions)
        self.engine = engine
        self.persona = persona
        self._live: Any = None  # the SDK's AsyncSession while connected
        self._pre_roll = PreRoll()
        self._activity_open = False  # between activity_start and activity_end (presence turns)
        self._open_turn: int | None = None  # the user's latest turn, not yet answered
        self._awaiting: deque[int] = deque()  # turns handed to the model, oldest (being answered) first
        self._after_interruption = False  # a turnComplete may still close the interrupted generation
        self._user_text = ""
        self._agent_text = ""
        self.resume_handle: str | None = None
        self.reconnects = 0
        self.moves = 0  # planned moves to a new connection after a goAway
        self._going_away = False  # the service announced the end of this connection
        self._moving = False  # between a goAway's connection and the next one
        self._turn_audio: list[bytes] = []  # the current activity's audio, for a replay
        self._turn_audio_samples = 0
        self._end_pending = False  # the turn was confirmed while moving: activity_end is owed

    # -- inputs --------------------------------------------------------------------------------

    async def push_audio(self, audio: InputAudio) -> None:
        if self.engine.turns == "model" or self._activity_open:
            await self._send_audio(audio.samples)
        else:
            self._pre_roll.push(audio.samples)

    async def turn_event(self, event: TurnEvent) -> None:
        match event.kind:
            case TurnEventKind.USER_STARTED | TurnEventKind.TURN_RESUMED:
                # A resumed turn (the release was early) is a new activity for the model: the
                # interrupt before it already stopped the answer it had begun.
                self._open_turn = event.turn_id
                if self.engine.turns == "presence":
                    await self._start_activity()
            case TurnEventKind.TURN_CONFIRMED:
                if not self._connected.is_set() and not self._moving:
                    self._activity_open = False
                    await self._fail_unreachable(event.turn_id, "Gemini Live")
                    return
                if self.engine.turns == "presence":
                    self._activity_open = False
                    self._hand_over(event.turn_id)
                    if self._connected.is_set():
                        await self._send(activity_end=True)
                    else:  # moving to a new connection: the turn is replayed there
                        self._end_pending = True
                # model turns: the model decides; it has answered already or will (the session's
                # reply watchdog ends the turn if it never does)
            case TurnEventKind.USER_PAUSED | TurnEventKind.TURN_ABANDONED:
                pass  # no speculation: an ended activity cannot be taken back

    async def interrupt(self, interrupt: Interrupt) -> None:
        self._forget(interrupt.turn_id)
        if self._awaiting and self._awaiting[0] == interrupt.turn_id and self.engine.turns == "presence":
            await self._start_activity()  # a new activity is what interrupts the model

    # -- talking to the model ------------------------------------------------------------------

    def _hand_over(self, turn_id: int) -> None:
        if turn_id not in self._awaiting:
            self._awaiting.append(turn_id)
        if self._open_turn == turn_id:
            self._open_turn = None

    async def _start_activity(self) -> None:
        if self._activity_open:
            return
        self._activity_open = True
        self._turn_audio, self._turn_audio_samples = [], 0
        await self._send(activity_start=True)
        await self._send_audio(self._pre_roll.take())

    async def _send_audio(self, samples: np.ndarray) -> None:
        if not len(samples):
            return
        pcm = float_to_s16le(samples)
        if self.engine.turns == "presence" and self._turn_audio_samples < TURN_AUDIO_LIMIT_SAMPLES:
            self._turn_audio.append(pcm)
            self._turn_audio_samples += len(samples)
        if self._connected.is_set():
            await self._send(audio=pcm)

    async def _replay_turn(self) -> None:
        """On a new connection, the user's turn under way (or confirmed while moving) again, whole."""
        if not (self._activity_open or self._end_pending):
            return
        await self._send(activity_start=True)
        for pcm in self._turn_audio:
            await self._send(audio=pcm)
        if self._end_pending:
            self._end_pending = False
            await self._send(activity_end=True)

    async def _send(self, audio: bytes | None = None, activity_start: bool = False, activity_end: bool = False) -> None:
        from google.genai import types

        live = self._live
        if live is None:
            return
        try:
            if audio is not None:
                await live.send_realtime_input(audio=types.Blob(data=audio, mime_type=INPUT_MIME))
            elif activity_start:
                await live.send_realtime_input(activity_start=types.ActivityStart())
            elif activity_end:
                await live.send_realtime_input(activity_end=types.ActivityEnd())
        except Exception as exc:  # a dead socket: the receive loop notices and reconnects
            log.debug("send failed: %s", describe(exc))

    async def _run(self) -> None:
        """Connect, receive until the socket drops or a goAway is served; again, with backoff
        after failures, none after a planned move; never after a refused configuration."""
        attempt = 0
        while not self._closed:
            try:
                async with contextlib.AsyncExitStack() as stack:
                    manager = self.engine.client().aio.live.connect(
                        model=self.engine.model, config=self.engine.connect_config(self.persona, self.resume_handle)
                    )
                    try:
                        live = await asyncio.wait_for(stack.enter_async_context(manager), self.engine.connect_timeout_s)
                    except Exception as exc:
                        refusal = self._refusal(exc)
                        if refusal is not None and self.resume_handle is not None:
                            # A handle past its lifetime may be what is refused: start afresh once.
                            log.warning("Gemini Live refused to resume (%s); starting a new conversation", refusal)
                            self.resume_handle = None
                            continue
                        if refusal is not None:
                            await self._refused(refusal)
                            return
                        self.connect_failures += 1
                        if self._moving:  # the move failed: what waited for it fails now
                            self._moving = False
                            await self._abandon_replies(f"the new connection failed: {describe(exc)}")
                        delay = backoff_s(attempt)
                        attempt += 1
                        log.warning("Gemini Live connect failed (%s); retrying in %.2f s", describe(exc), delay)
                        await asyncio.sleep(delay)
                        continue
                    attempt = 0
                    self._live = live
                    self._going_away = self._moving = False
                    self._connected.set()
                    await self._replay_turn()
                    reason = await self._receive(live)
            except Exception as exc:  # closing the SDK's socket failed: it is gone anyway
                reason = f"the connection failed: {describe(exc)}"
            self._live = None
            self._connected.clear()
            self.reconnects += 1
            if reason == MOVING:
                self.moves += 1
                log.info("Gemini Live: moving to a new connection (goAway)")
                continue
            log.warning("Gemini Live: %s; reconnecting", reason)
            await self._abandon_replies(reason)

    def _refusal(self, exc: BaseException) -> str | None:
        """The service's words if it refused the setup for good, else None (worth a retry)."""
        from google.genai import errors

        if isinstance(exc, errors.APIError) and exc.code in REFUSED_CLOSE_CODES:
            words = exc.details if isinstance(exc.details, str) else exc.message
            return scrub(str(words or exc))
        return refused_handshake(exc)

    async def _refused(self, refusal: str) -> None:
        self._activity_open = self._end_pending = False
        turns = list(self._awaiting)
        self._awaiting.clear()
        await self._misconfigured(f"Gemini Live refused model {self.engine.model!r}: {refusal}")
        for turn in turns:
            if turn not in self._dropped:
                await self._fail_unreachable(turn, "Gemini Live")

    async def _receive(self, live: Any) -> str:
        try:
            while True:
                async for message in live.receive():
                    await self._on_message(message)
                    if self._going_away and not self._awaiting:
                        # From now on turns wait for the new connection (and are replayed there),
                        # even before this one has finished closing.
                        self._live = None
                        self._connected.clear()
                        self._moving = True
                        return MOVING
        except Exception as exc:
            return f"the connection failed: {describe(exc)}"

    # -- what the model says -------------------------------------------------------------------

    async def _on_message(self, message: Any) -> None:
        """Map one server message to outputs; a goAway marks the connection for a move."""
        update = message.session_resumption_update
        if update is not None and update.resumable and update.new_handle:
            self.resume_handle = update.new_handle
        if message.tool_call is not None:
            await self._refuse_tools(message.tool_call)
        content = message.server_content
        if content is not None:
            await self._on_content(content)
        if message.go_away is not None and not self._going_away:
            self._going_away = True
            log.info("Gemini Live: goAway, %s left on this connection", message.go_away.time_left)

    async def _on_content(self, content: Any) -> None:
        if content.interrupted:
            await self._interrupted()
            if content.turn_complete:  # the end of the generation just cut, in the same message
                self._after_interruption = False
            return
        speaks = content.model_turn is not None or content.output_transcription is not None
        if content.input_transcription is not None or speaks:
            turn = await self._answering()
            if turn is None:
                return
            if speaks:
                self._after_interruption = False
            if content.input_transcription is not None and content.input_transcription.text:
                self._user_text += content.input_transcription.text
                await self._emit(Transcript("user", self._user_text.strip(), False, turn))
            if content.model_turn is not None:
                for part in content.model_turn.parts or ():
                    blob = part.inline_data
                    if blob is not None and blob.data and (blob.mime_type or "").startswith("audio/pcm"):
                        pcm = np.frombuffer(blob.data, dtype="<i2")
                        samples = (pcm.astype(np.float32) / 32768.0).astype(np.float32)
                        await self._emit(AudioChunk(turn, samples, MODEL_RATE))
            if content.output_transcription is not None and content.output_transcription.text:
                self._agent_text += content.output_transcription.text
                await self._emit(Transcript("agent", self._agent_text.strip(), False, turn))
        if content.turn_complete:
            await self._turn_complete()

    async def _answering(self) -> int | None:
        """The turn the model's output belongs to, or None when it is stale.

        In model-driven turns the first output after the user spoke is the model taking the
        turn: the session hears of it before the first audio. Output with no user turn to
        answer (the model answered noise presence never took for speech) is dropped."""
        if not self._awaiting and self.engine.turns == "model" and self._open_turn is not None:
            turn = self._open_turn
            self._hand_over(turn)
            await self._emit(TurnTaken(turn))
        if not self._awaiting:
            return None
        turn = self._awaiting[0]
        return None if turn in self._dropped else turn

    async def _turn_complete(self) -> None:
        if not self._awaiting or self._after_interruption:
            self._after_interruption = False
            return  # the end of a generation already cut short
        turn = self._awaiting.popleft()
        if not (self._activity_open or self._end_pending):  # nothing left that a replay would need
            self._turn_audio, self._turn_audio_samples = [], 0
        user, agent = self._user_text.strip(), self._agent_text.strip()
        self._user_text = self._agent_text = ""
        if turn in self._dropped:
            return
        if user:
            await self._emit(Transcript("user", user, True, turn))
        await self._emit(Transcript("agent", agent, True, turn))
        await self._emit(ReplyEnd(turn, "done"))

    async def _interrupted(self) -> None:
        """The generation was cut (by our activity_start, or the model heard the user)."""
        if not self._awaiting:
            return
        turn = self._awaiting.popleft()
        self._user_text = self._agent_text = ""
        self._after_interruption = True
        if turn not in self._dropped:
            self._dropped.add(turn)
            await self._emit(ReplyEnd(turn, "interrupted"))

    async def _refuse_tools(self, tool_call: Any) -> None:
        """Tools are out of scope: answer every call with an error so the model can go on."""
        from google.genai import types

        live = self._live
        calls = tool_call.function_calls or []
        if live is None or not calls:
            return
        responses = [types.FunctionResponse(id=c.id, name=c.name, response=TOOL_ERROR) for c in calls]
        try:
            await live.send_tool_response(function_responses=responses)
        except Exception as exc:
            log.debug("tool response failed: %s", describe(exc))

    async def _abandon_replies(self, reason: str) -> None:
        """The socket dropped: every turn still waiting for words ends now, with an error."""
        turns = list(self._awaiting)
        self._awaiting.clear()
        self._end_pending = False
        self._user_text = self._agent_text = ""
        self._after_interruption = False
        for turn in turns:
            if turn not in self._dropped:
                await self._fail_turn(turn, "engine_disconnected", f"Gemini Live: {reason}")
