"""Whisper tiny.en through the shared recognizer: real model, real speech."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from presence.audio.pcm import resample
from presence.audio.wavfile import read_audio
from presence.engines.local.asr import RecognizerError
from presence.engines.local.whisper import WhisperAsr, WhisperRecognizer

pytestmark = pytest.mark.local_models


@pytest.fixture(scope="module")
def asr() -> Iterator[WhisperAsr]:
    shared = WhisperAsr()
    shared.load()
    yield shared
    shared.stop()


def timit(timit_dir: Path, name: str) -> np.ndarray:
    audio, rate = read_audio(timit_dir / name)
    return resample(audio, rate, 16_000)


def feed(recognizer: WhisperRecognizer, audio: np.ndarray) -> None:
    for offset in range(0, len(audio), 320):
        recognizer.feed(audio[offset : offset + 320])


def words(text: str) -> set[str]:
    return {w.strip(".,?!").lower() for w in text.split()}


async def test_real_speech_is_transcribed(asr: WhisperAsr, timit_dir: Path) -> None:
    recognizer = asr.open()
    feed(recognizer, timit(timit_dir, "dr2-marc0/sa2.wav"))  # "Don't ask me to carry an oily rag like that."
    final = await recognizer.final()
    assert final.final
    assert {"ask", "carry", "rag", "like", "that"} <= words(final.text)


async def test_partial_transcripts_arrive_while_the_user_speaks(asr: WhisperAsr, timit_dir: Path) -> None:
    loop = asyncio.get_running_loop()
    partials: asyncio.Queue[str] = asyncio.Queue()

    def on_partial(text: str) -> None:
        loop.call_soon_threadsafe(partials.put_nowait, text)

    recognizer = asr.open(on_partial)
    audio = timit(timit_dir, "dr1-fvmh0/sa1.wav")  # "She had your dark suit in greasy wash water all year."
    for offset in range(0, len(audio), 320):  # at twice real time, as a (fast) microphone would
        recognizer.feed(audio[offset : offset + 320])
        await asyncio.sleep(0.01)
    first = await asyncio.wait_for(partials.get(), 30)
    assert first.strip()
    assert words(first) & {"she", "had", "your", "dark", "suit"}
    await recognizer.discard()


async def test_the_final_transcript_reuses_the_decode_started_at_the_pause(asr: WhisperAsr, timit_dir: Path) -> None:
    recognizer = asr.open()
    feed(recognizer, timit(timit_dir, "dr2-marc0/sa2.wav"))
    at_pause = await recognizer.partial()
    decoded = recognizer.decoded_s
    feed(recognizer, np.zeros(8000, np.float32))  # the silence until the turn is confirmed
    final = await recognizer.final()
    assert final.text == at_pause.text and final.final
    assert recognizer.decoded_s == decoded, "no second decode"


async def test_speech_after_a_resumed_pause_is_in_the_final_transcript(asr: WhisperAsr, timit_dir: Path) -> None:
    recognizer = asr.open()
    first = timit(timit_dir, "dr2-marc0/sa2.wav")
    feed(recognizer, first[: len(first) // 2])
    at_pause = await recognizer.partial()
    recognizer.resumed()  # the user goes on
    feed(recognizer, first[len(first) // 2 :])
    final = await recognizer.final()
    assert "rag" not in words(at_pause.text)
    assert {"rag", "like", "that"} <= words(final.text)


async def test_sessions_share_the_model_but_not_their_audio(asr: WhisperAsr, timit_dir: Path) -> None:
    one, two = asr.open(), asr.open()
    feed(one, timit(timit_dir, "dr2-marc0/sa2.wav"))
    feed(two, timit(timit_dir, "dr1-fvmh0/sa1.wav"))
    heard_one, heard_two = await asyncio.gather(one.final(), two.final())
    assert "rag" in words(heard_one.text) and "rag" not in words(heard_two.text)
    assert {"dark", "suit", "year"} <= words(heard_two.text)


async def test_a_decoder_failure_reaches_whoever_waits_for_the_transcript(timit_dir: Path) -> None:
    unloaded = WhisperAsr()  # never loaded: decoding fails inside the worker thread
    recognizer = unloaded.open()
    feed(recognizer, timit(timit_dir, "dr2-marc0/sa2.wav"))
    with pytest.raises(RecognizerError, match="not loaded"):
        await recognizer.final()
    unloaded.stop()
