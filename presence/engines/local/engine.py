"""The embedded local engine: streaming ASR → LLM tokens → clause-by-clause TTS with phonemes.

Offline, no key. Work starts at the first pause (``USER_PAUSED``) from the partial transcript,
so by the time the turn is confirmed the first clause is usually synthesized; if the final
transcript differs from the one the speculation used, the reply is redone from the final.

Per session: the recognizer's utterance state and one reply task at a time, nothing else, so
that a closed session leaves nothing behind. Shared by sessions: the ASR worker thread and its
decoders, the LLM (generation serialised) and eSpeak NG (synthesis serialised).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from presence.audio.espeak import Espeak, Voice
from presence.config import Settings
from presence.engines.base import (
    Engine,
    EngineError,
    EngineOutput,
    EngineSession,
    Interrupt,
    ReplyEnd,
    SessionOptions,
    Transcript,
    TurnEvent,
    TurnEventKind,
    start_reply_task,
    until_closed,
)
from presence.engines.local.asr import AsrWorker, Hypothesis, RecognizerError, SpeechRecognition
from presence.engines.local.clauses import speakable
from presence.engines.local.knowledge import facts_of, load_knowledge, relevant_facts, system_prompt, user_message
from presence.engines.local.llm import LanguageModel, LanguageModelError, LlamaModel, Message, OpenAICompatibleModel
from presence.engines.local.piper import PiperVoice
from presence.engines.local.reply import ReplyText
from presence.engines.local.tts import run_synthesis, speak, speak_piper
from presence.media import INPUT_SAMPLE_RATE, AudioChunk, InputAudio, PhonemeMark

log = logging.getLogger(__name__)

PRE_ROLL_S: Final = 0.5  # audio kept from before the VAD said "speech", so onsets are not clipped
# The prompt keeps at most HISTORY_MAX user/agent pairs and, past that, drops to HISTORY_KEEP.
# Trimming in blocks matters: llama.cpp reuses the previous prompt's tokens up to the first
# difference, so dropping the oldest turn every turn would re-evaluate the whole history each
# time (measured: first token 1.5 s instead of 60 ms after a few turns).
HISTORY_MAX: Final = 6
HISTORY_KEEP: Final = 2
FALLBACK_REPLY: Final = "Sorry, could you say that again?"


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower()).strip()


@dataclass(slots=True)
class _Reply:
    turn_id: int
    user_text: str
    cancel: threading.Event = field(default_factory=threading.Event)
    task: asyncio.Task[None] | None = None
    spoken: list[tuple[int, str]] = field(default_factory=list)  # (end sample, words) as emitted
    finished: bool = False
    marks: dict[str, float] = field(default_factory=dict)  # stage → perf_counter(), first wins

    def mark(self, stage: str) -> None:
        self.marks.setdefault(stage, time.perf_counter())


def make_recognition(settings: Settings) -> SpeechRecognition:
    if settings.asr == "pocketsphinx":
        return AsrWorker()
    from presence.engines.local.whisper import WhisperAsr  # imports faster-whisper only when used

    return WhisperAsr(threads=settings.asr_threads)


class LocalEngine(Engine):
    name = "local"
    phoneme_timings = True  # eSpeak NG reports every phoneme's sample

    def __init__(self, settings: Settings, model: LanguageModel | None = None) -> None:
        self.settings = settings
        self.voice = Voice(settings.voice, settings.tts_rate_wpm, settings.tts_pitch)
        if model is not None:
            self.model: LanguageModel = model
        elif settings.llm_url:
            key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
            self.model = OpenAICompatibleModel(settings.llm_url, settings.llm_model, key)
        else:
            self.model = LlamaModel(threads=settings.llm_threads)
        self.asr = make_recognition(settings)
        self.knowledge = load_knowledge(Path(settings.knowledge)) if settings.knowledge else None
        self.facts = facts_of(self.knowledge) if self.knowledge else []
        # Optional natural voice; eSpeak NG stays the default (licence: docs/local-engine.md).
        self.piper = PiperVoice() if settings.tts == "piper" else None

    async def start(self) -> None:
        await self.model.start()
        await asyncio.to_thread(self.asr.load)
        model = self.model
        if isinstance(model, LlamaModel):
            # Cache the system prompt's tokens so the first turn starts as fast as later ones.
            system = system_prompt(self.settings.persona, self.knowledge)
            await model.run(lambda: model.warm([{"role": "system", "content": system}]))
        # Load eSpeak NG (and Piper) now rather than in the first reply.
        await run_synthesis(Espeak.instance)
        if self.piper is not None:
            await run_synthesis(self.piper.load)

    async def stop(self) -> None:
        await self.model.stop()
        await asyncio.to_thread(self.asr.stop)

    async def open_session(self, options: SessionOptions) -> LocalSession:
        session = LocalSession(self, options.persona or self.settings.persona)
        await session.start()
        return session


class LocalSession(EngineSession):
    def __init__(self, engine: LocalEngine, persona: str) -> None:
        self.engine = engine
        self.persona = persona
        self.system = system_prompt(persona, engine.knowledge)  # persona + the venue's facts
        self.history: list[Message] = []
        self._outputs: asyncio.Queue[EngineOutput | None] = asyncio.Queue(maxsize=256)
        self._loop = asyncio.get_running_loop()
        self._recognizer = engine.asr.open(self._on_partial)
        self._pre_roll: deque[np.ndarray] = deque()
        self._pre_roll_samples = 0
        self._listening_turn: int | None = None  # the user turn the recognizer is hearing
        self._reply: _Reply | None = None
        self._closed = False
        #: turn → stage → perf_counter(): when each stage of the reply that was kept happened
        #: (speculation started, confirmed, ASR final, LLM first token, first clause, TTS first
        #: chunk, first audio out). ``presence bench engine`` reads it.
        self.timings: dict[int, dict[str, float]] = {}
        self._background: set[asyncio.Task[None]] = set()
        # The transcript at a pause takes a Whisper decode (~100 ms): it runs as a task, so that
        # the session goes on reading audio meanwhile.
        self._speculation: asyncio.Task[None] | None = None
        self._pause_transcript: tuple[int, float, float, str] | None = None  # turn, asked, ready, text

    async def start(self) -> None:
        """Nothing to load: models and threads are the engine's, shared by every session."""

    # -- inputs --------------------------------------------------------------------------

    async def push_audio(self, audio: InputAudio) -> None:
        if self._listening_turn is not None:
            self._recognizer.feed(audio.samples)
            return
        self._pre_roll.append(audio.samples)
        self._pre_roll_samples += len(audio.samples)
        while self._pre_roll and self._pre_roll_samples - len(self._pre_roll[0]) >= PRE_ROLL_S * INPUT_SAMPLE_RATE:
            self._pre_roll_samples -= len(self._pre_roll.popleft())

    async def turn_event(self, event: TurnEvent) -> None:
        match event.kind:
            case TurnEventKind.USER_STARTED | TurnEventKind.TURN_RESUMED:
                # Resumed after an early release: the interrupt before it kept what was heard of
                # the reply; the rest of the user's turn is heard like a new utterance.
                self._begin_listening(event.turn_id)
            case TurnEventKind.USER_PAUSED:
                await self._stop_speculating()
                self._speculation = asyncio.create_task(
                    self._speculate(event.turn_id), name=f"local-speculate-{event.turn_id}"
                )
            case TurnEventKind.TURN_ABANDONED:
                await self._stop_speculating()
                self._recognizer.resumed()  # the user went on: the pause's transcript is stale
                self._pause_transcript = None
                await self._cancel_reply(event.turn_id, purge=True)
            case TurnEventKind.TURN_CONFIRMED:
                await self._confirm(event.turn_id)

    async def interrupt(self, interrupt: Interrupt) -> None:
        reply = self._reply
        if reply is None or reply.turn_id != interrupt.turn_id:
            return
        heard = " ".join(words for end, words in reply.spoken if words and end <= interrupt.heard_samples)
        await self._cancel_reply(interrupt.turn_id, purge=True)
        # The conversation remembers only what the user actually heard.
        self._remember(reply.user_text, (heard + " …").strip() if heard else "")

    def outputs(self) -> AsyncIterator[EngineOutput]:
        return until_closed(self._outputs)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._stop_speculating()
        if self._reply is not None:
            await self._cancel_reply(self._reply.turn_id, purge=False)
        for task in list(self._background):
            with contextlib.suppress(Exception):
                await task  # a warm-up holds the model lock for well under a second
        self._recognizer.close()
        with contextlib.suppress(asyncio.QueueFull):
            self._outputs.put_nowait(None)

    # -- turn handling -------------------------------------------------------------------

    async def _stop_speculating(self) -> None:
        task, self._speculation = self._speculation, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _begin_listening(self, turn_id: int) -> None:
        if self._listening_turn == turn_id:
            self._recognizer.resumed()  # the same turn goes on after a pause
            self._pause_transcript = None
        if self._listening_turn is None:
            for samples in self._pre_roll:
                self._recognizer.feed(samples)
            self._pre_roll.clear()
            self._pre_roll_samples = 0
        self._listening_turn = turn_id

    def _on_partial(self, text: str) -> None:
        """From the recognizer thread: a new partial transcript of the current user turn."""
        turn_id = self._listening_turn
        if turn_id is not None and not self._closed:
            self._loop.call_soon_threadsafe(self._emit_nowait, Transcript("user", text, False, turn_id))

    async def _speculate(self, turn_id: int) -> None:
        asked = time.perf_counter()
        try:
            hypothesis = await self._recognizer.partial()
        except RecognizerError as exc:
            log.warning("transcript at the pause failed (the final one will retry): %s", exc)
            return
        self._pause_transcript = (turn_id, asked, time.perf_counter(), hypothesis.text)
        if speakable(hypothesis.text):
            self._start_reply(turn_id, hypothesis.text).mark("speculated")

    async def _confirm(self, turn_id: int) -> None:
        self._listening_turn = None
        confirmed = time.perf_counter()
        speculation = self._speculation
        if speculation is not None and not speculation.done():
            # Its decode is the one final() reuses: let it start its reply first, then judge it.
            with contextlib.suppress(asyncio.CancelledError):
                await speculation
        pause, self._pause_transcript = self._pause_transcript, None
        try:
            hypothesis: Hypothesis = await self._recognizer.final()
        except RecognizerError as exc:
            await self._cancel_reply(turn_id, purge=True)
            await self._emit(EngineError(str(exc), turn_id, code="asr_failed"))
            await self._emit(ReplyEnd(turn_id, "error"))
            return
        asr_final = time.perf_counter()
        await self._emit(Transcript("user", hypothesis.text, True, turn_id))
        self.timings[turn_id] = {"confirmed": confirmed, "asr_final": asr_final, "transcript_ready": asr_final}
        if pause is not None and pause[0] == turn_id:
            # When the final transcript is the pause's, it was ready when that decode ended.
            self.timings[turn_id]["paused"] = pause[1]
            if pause[3] == hypothesis.text:
                self.timings[turn_id]["transcript_ready"] = pause[2]
        del_old = [t for t in self.timings if t < turn_id - 50]
        for old in del_old:  # bounded: benchmarks read recent turns only
            del self.timings[old]
        reply = self._reply
        if reply is not None and reply.turn_id == turn_id:
            if _normalise(reply.user_text) == _normalise(hypothesis.text):
                reply.marks.update(self.timings[turn_id])
                self.timings[turn_id] = reply.marks  # the speculation heard the same words: keep it
                return
            # It answered other words: withdraw it (the session may hold some of it) and redo.
            await self._cancel_reply(turn_id, purge=True)
            await self._emit(ReplyEnd(turn_id, "cancelled"))
        if not speakable(hypothesis.text):
            # Silence or noise the recogniser could not turn into words: no reply.
            await self._emit(ReplyEnd(turn_id, "done"))
            return
        reply = self._start_reply(turn_id, hypothesis.text)
        reply.marks.update(self.timings[turn_id])
        self.timings[turn_id] = reply.marks

    def _start_reply(self, turn_id: int, user_text: str) -> _Reply:
        if self._reply is not None and not self._reply.finished:
            self._reply.cancel.set()
        reply = _Reply(turn_id, user_text)
        reply.mark("reply_started")
        reply.task = start_reply_task(turn_id, self._run_reply(reply), self._emit, f"local-reply-{turn_id}")
        self._reply = reply
        return reply

    async def _cancel_reply(self, turn_id: int, purge: bool) -> None:
        reply = self._reply
        if reply is None or reply.turn_id != turn_id:
            return
        reply.cancel.set()
        if reply.task is not None and not reply.task.done():
            reply.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reply.task
        self._reply = None
        if purge:
            self._purge(turn_id)

    def _purge(self, turn_id: int) -> None:
        """Drop queued outputs of a cancelled reply (the engine contract: nothing of it escapes)."""
        kept: list[EngineOutput | None] = []
        while not self._outputs.empty():
            item = self._outputs.get_nowait()
            if item is None or item.turn_id != turn_id or (isinstance(item, Transcript) and item.role == "user"):
                kept.append(item)
        for item in kept:
            self._outputs.put_nowait(item)

    # -- the reply -----------------------------------------------------------------------

    def _messages(self, user_text: str) -> list[Message]:
        # The facts that bear on the question go next to it (the history keeps only what was heard).
        asked = user_message(user_text, relevant_facts(self.engine.facts, user_text))
        return [{"role": "system", "content": self.system}, *self.history, {"role": "user", "content": asked}]

    def _remember(self, user_text: str, agent_text: str) -> None:
        self.history += [{"role": "user", "content": user_text}, {"role": "assistant", "content": agent_text}]
        if len(self.history) > 2 * HISTORY_MAX:
            del self.history[: len(self.history) - 2 * HISTORY_KEEP]
            self._rewarm()

    def _rewarm(self) -> None:
        """After a trim the next prompt differs from the cached one right after the system
        prompt; evaluate the new prefix now, while the user is still listening to the reply,
        so the next turn does not pay for it."""
        model = self.engine.model
        if not isinstance(model, LlamaModel) or self._closed:
            return
        prefix = [{"role": "system", "content": self.system}, *self.history]
        task = asyncio.create_task(model.run(lambda: model.warm(prefix)), name="local-llm-rewarm")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _run_reply(self, reply: _Reply) -> None:
        turn_id = reply.turn_id
        said: list[str] = []
        position = 0  # samples of reply audio emitted so far (engine rate)
        text = ReplyText(
            self.engine.model, self._messages(reply.user_text), reply.cancel, self.engine.settings.reply_max_sentences
        )
        try:
            async for clause in text.clauses():
                if text.first_token_at is not None:
                    reply.marks.setdefault("llm_first_token", text.first_token_at)
                reply.mark("first_clause")
                position = await self._say(reply, clause, position)
                said.append(clause)
            if not said:  # empty or punctuation-only reply: say something rather than nothing
                position = await self._say(reply, FALLBACK_REPLY, position)
                said.append(FALLBACK_REPLY)
            agent_text = " ".join(said)
            await self._emit(Transcript("agent", agent_text, True, turn_id))
            await self._emit(ReplyEnd(turn_id, "done"))
            # The model's own words verbatim keep its prompt cache valid; when it was stopped
            # after its sentences, what was said is what the user heard.
            generated = text.generated
            kept = generated if speakable(generated) and not text.stopped_early else agent_text
            self._remember(reply.user_text, kept)
        except (LanguageModelError, RuntimeError) as exc:
            log.warning("local engine reply failed: %s", exc)
            await self._emit(EngineError(str(exc), turn_id, code="local_engine_failed"))
            await self._emit(ReplyEnd(turn_id, "error"))
        finally:
            reply.finished = True

    async def _say(self, reply: _Reply, clause: str, position: int) -> int:
        """Speak one clause; returns the reply's sample position after it."""
        if self.engine.piper is not None:
            return await self._say_piper(self.engine.piper, reply, clause, position)
        async for chunk in speak(clause, self.engine.voice, reply.cancel):
            reply.mark("tts_first_chunk")
            words = [clause[w.start : w.start + w.length] for w in chunk.words if 0 <= w.start < len(clause)]
            marks = tuple(PhonemeMark(p.offset, p.symbol, "espeak") for p in chunk.phonemes)
            rate = Espeak.instance().sample_rate
            position += len(chunk.samples)
            reply.spoken.append((position, " ".join(words)))
            await self._emit(AudioChunk(reply.turn_id, chunk.samples, rate, marks, " ".join(words)))
            reply.mark("first_audio")
        await self._emit(Transcript("agent", clause, False, reply.turn_id))
        return position

    async def _say_piper(self, voice: PiperVoice, reply: _Reply, clause: str, position: int) -> int:
        async for speech in speak_piper(clause, voice, reply.cancel):
            reply.mark("tts_first_chunk")
            marks = tuple(
                PhonemeMark(p.offset_samples, p.arpabet, "arpabet", p.duration_samples) for p in speech.phones
            )
            position += len(speech.samples)
            reply.spoken.append((position, clause))  # Piper gives no word timings: the clause
            await self._emit(AudioChunk(reply.turn_id, speech.samples, voice.sample_rate, marks, clause))
            reply.mark("first_audio")
        await self._emit(Transcript("agent", clause, False, reply.turn_id))
        return position

    async def _emit(self, item: EngineOutput) -> None:
        await self._outputs.put(item)

    def _emit_nowait(self, item: EngineOutput) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # a partial transcript may be skipped
            self._outputs.put_nowait(item)


def create_engine(settings: Settings) -> LocalEngine:
    return LocalEngine(settings)
