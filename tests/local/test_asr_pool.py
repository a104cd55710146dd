"""Pooled pocketsphinx decoders do not carry one session's speaker into the next (issue 12's
memory fix lends decoders per utterance; their cepstral mean must stay per session)."""

from __future__ import annotations

import numpy as np

from presence.audio.espeak import Espeak, Voice
from presence.audio.pcm import resample
from presence.engines.local.asr import AsrWorker, DecoderPool, StreamingRecognizer


def spoken(text: str) -> np.ndarray:
    speech = Espeak.instance().synthesize(text, Voice("en-us", 150, 50))
    audio = resample(speech.samples, speech.sample_rate, 16_000)
    return np.concatenate([np.zeros(3200, np.float32), audio, np.zeros(4800, np.float32)])


async def hear(recognizer: StreamingRecognizer, audio: np.ndarray) -> str:
    for offset in range(0, len(audio), 320):
        recognizer.feed(audio[offset : offset + 320])
    return (await recognizer.final()).text


async def test_a_pooled_decoder_hears_a_new_session_as_a_fresh_one_would() -> None:
    question = spoken("What time does the restaurant open tomorrow?")
    fresh = StreamingRecognizer()
    expected = await hear(fresh, question)
    fresh.close()
    worker = AsrWorker(DecoderPool(idle_max=1))
    try:
        loud = StreamingRecognizer(worker)
        rng = np.random.default_rng(3)
        await hear(loud, (0.5 * rng.standard_normal(48_000)).astype(np.float32))  # skews its cepstral mean
        loud.close()
        second = StreamingRecognizer(worker)  # lent the same decoder
        assert await hear(second, question) == expected
        second.close()
    finally:
        worker.stop()
