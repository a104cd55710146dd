"""Speech recognisers compared on a TIMIT-style folder: word error rate, time to the final
transcript after the pause begins, and CPU per second of speech (``presence bench engine``).

Each utterance is fed to the recogniser as a session would feed it. The latency is measured
the way each recogniser is used by the engine at a pause: pocketsphinx decodes as audio
arrives, so once it has caught up only the end of the utterance remains (``final()``);
Whisper decodes the whole turn when the pause begins (``partial()``), and ``final()`` reuses
that. CPU is the recogniser's own decoding CPU divided by the audio it heard, with partial
transcripts on, feeding a subset in real time.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from presence.audio.pcm import resample
from presence.audio.wavfile import read_audio
from presence.bench._stats import summary
from presence.engines.local.asr import Recognizer, SpeechRecognition

FRAME = 320


@dataclass(frozen=True, slots=True)
class Utterance:
    name: str
    audio: np.ndarray  # 16 kHz mono float32
    words: list[str]


def normalise(text: str) -> list[str]:
    """Lower-case words without punctuation (hyphens split words, apostrophes stay)."""
    return re.sub(r"[^a-z0-9' ]", " ", text.lower().replace("-", " ")).split()


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    row = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, 1):
        previous, row[0] = row[:], i
        for j, hyp_word in enumerate(hypothesis, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word))
    return row[-1]


def load_utterances(folder: Path, limit: int | None = None) -> list[Utterance]:
    """``<speaker>/<utt>.wav`` with a ``.txt`` beside it (TIMIT: "start end words")."""
    utterances = []
    for wav in sorted(folder.glob("*/*.wav")):
        txt = wav.with_suffix(".txt")
        if not txt.exists():
            continue
        fields = txt.read_text().split(maxsplit=2)
        text = fields[2] if len(fields) == 3 and fields[0].isdigit() else txt.read_text()
        audio, rate = read_audio(wav)
        utterances.append(Utterance(f"{wav.parent.name}/{wav.stem}", resample(audio, rate, 16_000), normalise(text)))
        if limit is not None and len(utterances) >= limit:
            break
    if not utterances:
        raise SystemExit(f"no <speaker>/<utt>.wav with a .txt transcript under {folder} (pass --data)")
    return utterances


def _feed(recognizer: Recognizer, audio: np.ndarray) -> None:
    for offset in range(0, len(audio), FRAME):
        recognizer.feed(audio[offset : offset + FRAME])


async def _final_after_pause(recognizer: Recognizer, streaming: bool) -> tuple[str, float]:
    """The final transcript and the ms it took from the pause, for the recogniser's way of working."""
    if streaming:
        await recognizer.partial()  # runs after every queued audio job: decoding has caught up
        started = time.perf_counter()
        final = await recognizer.final()
    else:
        started = time.perf_counter()
        await recognizer.partial()  # the decode the engine starts at the pause
        final = await recognizer.final()
    return final.text, (time.perf_counter() - started) * 1000


async def _accuracy(shared: SpeechRecognition, utterances: list[Utterance]) -> dict[str, Any]:
    errors = words = 0
    latencies: list[float] = []
    worst: list[tuple[int, str, str]] = []
    streaming = shared.name == "pocketsphinx"
    for utterance in utterances:
        recognizer = shared.open()
        _feed(recognizer, utterance.audio)
        text, latency_ms = await _final_after_pause(recognizer, streaming)
        recognizer.close()
        distance = edit_distance(utterance.words, normalise(text))
        errors += distance
        words += len(utterance.words)
        latencies.append(latency_ms)
        worst.append((distance, utterance.name, text))
    worst.sort(reverse=True)
    return {
        "utterances": len(utterances),
        "wer_pct": round(100 * errors / max(words, 1), 2),
        "final_after_pause_ms": summary(latencies, 1),
        "worst": [{"errors": e, "utterance": n, "heard": t} for e, n, t in worst[:5]],
    }


async def _cpu(shared: SpeechRecognition, utterances: list[Utterance]) -> float:
    """Process CPU ms per second of audio, fed in real time with partial transcripts on (the
    process does nothing else meanwhile; Whisper computes on CTranslate2's own threads)."""
    audio_s = 0.0
    loop = asyncio.get_running_loop()
    started = time.process_time()
    for utterance in utterances:
        recognizer = shared.open(lambda text: None)
        start = loop.time()
        for i, offset in enumerate(range(0, len(utterance.audio), FRAME)):
            delay = start + i * FRAME / 16_000 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            recognizer.feed(utterance.audio[offset : offset + FRAME])
        await recognizer.partial()
        await recognizer.final()
        recognizer.close()
        audio_s += len(utterance.audio) / 16_000
    return round(1000 * (time.process_time() - started) / max(audio_s, 1e-9), 1)


def compare(
    recognisers: list[SpeechRecognition], utterances: list[Utterance], cpu_utterances: int
) -> list[dict[str, Any]]:
    """One row per recogniser, all measured in this run."""
    rows = []
    for shared in recognisers:
        shared.load()
        try:
            row = asyncio.run(_accuracy(shared, utterances))
            row["cpu_ms_per_audio_s"] = asyncio.run(_cpu(shared, utterances[:cpu_utterances]))
        finally:
            shared.stop()
        rows.append({"asr": shared.name, **row})
    return rows
