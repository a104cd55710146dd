"""The local engine with its real models: pocketsphinx, SmolLM2 through llama.cpp, eSpeak NG.

Questions are spoken by eSpeak NG, resampled to 16 kHz and fed as a session would; the
engine's outputs are read back from its single output stream.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from presence.audio.espeak import Espeak, Voice
from presence.audio.pcm import resample
from presence.audio.wavfile import read_audio
from presence.config import Settings
from presence.engines.base import (
    EngineError,
    EngineOutput,
    Interrupt,
    ReplyEnd,
    SessionOptions,
    Transcript,
    TurnEvent,
    TurnEventKind,
)
from presence.engines.local.asr import StreamingRecognizer
from presence.engines.local.clauses import clean_for_speech
from presence.engines.local.engine import FALLBACK_REPLY, LocalEngine, LocalSession
from presence.engines.local.llm import LlamaModel, Message
from presence.media import AudioChunk, InputAudio

pytestmark = pytest.mark.local_models


def spoken(text: str, lead_s: float = 0.2) -> np.ndarray:
    speech = Espeak.instance().synthesize(text, Voice("en-us", 150, 50))
    audio = resample(speech.samples, speech.sample_rate, 16_000)
    return np.concatenate([np.zeros(int(lead_s * 16_000), np.float32), audio, np.zeros(4800, np.float32)])


async def feed(session: LocalSession, audio: np.ndarray) -> None:
    for offset in range(0, len(audio), 320):
        await session.push_audio(InputAudio(audio[offset : offset + 320], offset))


async def collect(session: LocalSession, until_turn_ends: int, limit_s: float = 30) -> list[EngineOutput]:
    items: list[EngineOutput] = []

    async def read() -> None:
        async for item in session.outputs():
            items.append(item)
            if isinstance(item, ReplyEnd) and item.turn_id == until_turn_ends and item.reason != "cancelled":
                return

    await asyncio.wait_for(read(), limit_s)
    return items


async def ask(session: LocalSession, turn_id: int, text: str, speculate: bool = True) -> list[EngineOutput]:
    await session.turn_event(TurnEvent(TurnEventKind.USER_STARTED, turn_id, 0))
    await feed(session, spoken(text))
    if speculate:
        await session.turn_event(TurnEvent(TurnEventKind.USER_PAUSED, turn_id, 0))
    await session.turn_event(TurnEvent(TurnEventKind.TURN_CONFIRMED, turn_id, 0))
    return await collect(session, turn_id)


@pytest.fixture
async def engine() -> AsyncIterator[LocalEngine]:
    local = LocalEngine(Settings(engine="local"))
    await local.start()
    yield local
    await local.stop()


async def recognise(audio: np.ndarray) -> str:
    recognizer = StreamingRecognizer()
    for offset in range(0, len(audio), 320):
        recognizer.feed(audio[offset : offset + 320])
    final = await recognizer.final()
    recognizer.close()
    assert final.final
    return final.text


async def test_recognizer_hears_the_key_words_of_a_clearly_synthesized_question() -> None:
    # pocketsphinx's acoustic model fits eSpeak's voice poorly; these words survive it.
    words = set((await recognise(spoken("What time does the restaurant open tomorrow?"))).split())
    assert {"restaurant", "tomorrow"} <= words


async def test_recognizer_transcribes_real_speech(timit_dir: Path) -> None:
    audio, rate = read_audio(timit_dir / "dr2-marc0" / "sa2.wav")  # "Don't ask me to carry an oily rag like that."
    words = set((await recognise(resample(audio, rate, 16_000))).split())
    assert {"carry", "oily", "rag", "like", "that"} <= words


async def test_a_spoken_question_gets_a_spoken_reply_with_phoneme_timings(engine: LocalEngine) -> None:
    session = await engine.open_session(SessionOptions("t"))
    outputs = await ask(session, 1, "What time does the restaurant open tomorrow?")
    await session.close()
    user = [o for o in outputs if isinstance(o, Transcript) and o.role == "user" and o.final]
    assert user and "restaurant" in user[-1].text
    audio = [o for o in outputs if isinstance(o, AudioChunk)]
    assert audio and all(chunk.sample_rate == 22050 for chunk in audio)
    assert sum(len(c.samples) for c in audio) > 22050 // 2, "at least half a second of speech"
    marks = [m for c in audio for m in c.phonemes]
    assert len(marks) > 10 and all(m.alphabet == "espeak" and m.offset_samples >= 0 for m in marks)
    agent = [o for o in outputs if isinstance(o, Transcript) and o.role == "agent" and o.final]
    assert agent and agent[-1].text
    assert session.history[-2] == {"role": "user", "content": user[-1].text}
    # The model's own words are remembered verbatim (its prompt cache depends on it); spoken,
    # they are what the user heard.
    assert clean_for_speech(session.history[-1]["content"]) == agent[-1].text


async def test_a_redone_speculation_is_retracted_before_the_new_reply(engine: LocalEngine) -> None:
    session = await engine.open_session(SessionOptions("t"))
    await session.turn_event(TurnEvent(TurnEventKind.USER_STARTED, 1, 0))
    question = spoken("Can you recommend a good book about history")
    half = len(question) // 2
    await feed(session, question[:half])
    await session.turn_event(TurnEvent(TurnEventKind.USER_PAUSED, 1, 0))  # speculates on half the words
    outputs = []
    async for item in session.outputs():  # the speculation is under way once it speaks
        outputs.append(item)
        if isinstance(item, AudioChunk):
            break
    await feed(session, question[half:])  # the turn machine would not confirm here; the engine must cope anyway
    await session.turn_event(TurnEvent(TurnEventKind.TURN_CONFIRMED, 1, 0))
    outputs += await collect(session, 1)
    await session.close()
    kinds = [(type(o).__name__, getattr(o, "reason", None)) for o in outputs]
    assert ("ReplyEnd", "cancelled") in kinds
    retracted_at = kinds.index(("ReplyEnd", "cancelled"))
    assert any(isinstance(o, AudioChunk) for o in outputs[retracted_at:]), "a new reply followed"


async def test_an_interrupted_reply_is_remembered_only_as_far_as_it_was_heard(engine: LocalEngine) -> None:
    session = await engine.open_session(SessionOptions("t"))
    await session.turn_event(TurnEvent(TurnEventKind.USER_STARTED, 1, 0))
    await feed(session, spoken("Tell me a long story about a dragon"))
    await session.turn_event(TurnEvent(TurnEventKind.TURN_CONFIRMED, 1, 0))
    produced: list[AudioChunk] = []
    async for item in session.outputs():
        if isinstance(item, AudioChunk):
            produced.append(item)
        if isinstance(item, ReplyEnd) or sum(len(c.samples) for c in produced) > 22050 * 2:
            break
    heard = produced[: max(1, len(produced) // 2)]  # the user heard the first half of it
    heard_samples = sum(len(c.samples) for c in heard)
    await session.interrupt(Interrupt(1, heard_samples))
    await session.close()
    remembered = session.history[-1]["content"]
    spoken_words = " ".join(c.text for c in heard if c.text)
    assert len(heard) < len(produced) or len(produced) == 1
    assert remembered.removesuffix("…").strip() == spoken_words.strip()
    if spoken_words:
        assert remembered.endswith("…"), "the cut is marked"


async def test_a_silent_turn_ends_without_a_reply(engine: LocalEngine) -> None:
    session = await engine.open_session(SessionOptions("t"))
    await session.turn_event(TurnEvent(TurnEventKind.USER_STARTED, 1, 0))
    await feed(session, np.zeros(16_000, np.float32))
    await session.turn_event(TurnEvent(TurnEventKind.TURN_CONFIRMED, 1, 0))
    outputs = await collect(session, 1, limit_s=10)
    await session.close()
    assert not any(isinstance(o, AudioChunk) for o in outputs)
    assert isinstance(outputs[-1], ReplyEnd) and outputs[-1].reason == "done"


class PunctuationModel:
    """A language model that answers only punctuation (a fault small models do show)."""

    name = "punctuation"

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def stream(self, messages: list[Message], cancel: threading.Event) -> AsyncIterator[str]:
        for piece in ["...", " !", " **"]:
            yield piece


class BrokenModel(PunctuationModel):
    name = "broken"
    calls = 0

    async def stream(self, messages: list[Message], cancel: threading.Event) -> AsyncIterator[str]:
        BrokenModel.calls += 1
        if BrokenModel.calls == 1:
            raise RuntimeError("the model process crashed")
        yield "Fine again."


async def _engine_with(model: Any) -> LocalEngine:
    local = LocalEngine(Settings(engine="local"), model=model)
    await local.start()
    return local


async def test_an_unspeakable_llm_reply_gets_a_short_fallback() -> None:
    session = await (await _engine_with(PunctuationModel())).open_session(SessionOptions("t"))
    outputs = await ask(session, 1, "Hello there", speculate=False)
    await session.close()
    agent = [o for o in outputs if isinstance(o, Transcript) and o.role == "agent" and o.final]
    assert agent[-1].text == FALLBACK_REPLY
    assert any(isinstance(o, AudioChunk) for o in outputs)


async def test_a_failing_stage_ends_the_turn_with_an_error_and_the_session_goes_on() -> None:
    session = await (await _engine_with(BrokenModel())).open_session(SessionOptions("t"))
    first = await ask(session, 1, "Hello there", speculate=False)
    assert any(isinstance(o, EngineError) and "crashed" in o.message for o in first)
    assert isinstance(first[-1], ReplyEnd) and first[-1].reason == "error"
    second = await ask(session, 2, "Are you there", speculate=False)
    await session.close()
    assert any(isinstance(o, AudioChunk) for o in second)


async def test_the_last_clause_of_a_reply_is_spoken_even_without_final_punctuation() -> None:
    # Four tokens end the reply mid-sentence, so its only clause comes from the final flush.
    local = LocalEngine(Settings(engine="local"), model=LlamaModel(max_tokens=4))
    await local.start()
    session = await local.open_session(SessionOptions("t"))
    outputs = await ask(session, 1, "What time does the restaurant open tomorrow?", speculate=False)
    await session.close()
    agent = [o for o in outputs if isinstance(o, Transcript) and o.role == "agent" and o.final]
    audio = [o for o in outputs if isinstance(o, AudioChunk)]
    assert agent and agent[-1].text != FALLBACK_REPLY
    assert sum(len(c.samples) for c in audio) > 2205, "the flushed clause was spoken"


async def test_a_recogniser_failure_reaches_the_user_as_an_error_not_as_silence(engine: LocalEngine) -> None:
    session = await engine.open_session(SessionOptions("t"))
    engine.asr.stop()  # the shared model is gone (unloaded): every decode now fails
    outputs = await ask(session, 1, "Hello there", speculate=False)
    await session.close()
    errors = [o for o in outputs if isinstance(o, EngineError)]
    assert errors and errors[0].code == "asr_failed" and errors[0].turn_id == 1
    assert isinstance(outputs[-1], ReplyEnd) and outputs[-1].reason == "error"
    assert not any(isinstance(o, AudioChunk) for o in outputs)
