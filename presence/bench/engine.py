"""``presence bench engine``: the local engine's speech recognisers compared, then where its
time goes, stage by stage.

Recognisers: pocketsphinx and Whisper tiny.en on a TIMIT-style folder (``--data``; default
the TIMIT sample): word error rate, final transcript after the pause begins, CPU per second
of speech (see ``_asr_eval``).

Stages: questions spoken by eSpeak NG (several voices) are streamed in real time into the local
engine, as a session would, and each turn is confirmed after the default silence. With
speculation the engine is told ``USER_PAUSED`` after ``speculate_ms`` and has until
confirmation to prepare the reply; without it, work starts at confirmation. Per turn, in ms
after the turn is confirmed: ASR final, LLM first token, first clause ready, TTS first chunk,
engine first audio (negative = ready before confirmation). Plus CPU per second of audio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from presence.audio.espeak import Espeak, Voice
from presence.audio.pcm import resample
from presence.bench._asr_eval import compare, load_utterances
from presence.bench._stats import summary, table, write_results
from presence.config import Settings
from presence.engines.base import ReplyEnd, SessionOptions, TurnEvent, TurnEventKind
from presence.engines.local import tts
from presence.engines.local.asr import AsrWorker
from presence.engines.local.engine import LocalEngine, LocalSession
from presence.engines.local.whisper import WhisperAsr
from presence.media import AudioChunk, InputAudio

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = Path(os.environ.get("PRESENCE_DATA_DIR", REPO / ".." / "shared" / "data")) / "timit-sample"

QUESTIONS = [
    "What time does the restaurant open tomorrow?",
    "Can you book a taxi to the airport?",
    "Where is the nearest pharmacy?",
    "Is breakfast included with my room?",
    "How do I connect to the wifi?",
    "Can I get a late checkout on Sunday?",
    "What is the weather like today?",
    "Could you recommend a good museum?",
    "How far is the train station from here?",
    "Do you have a gym in the hotel?",
]
VOICES = [Voice("en-us", 160, 50), Voice("en-us", 140, 35), Voice("en", 170, 60)]
STAGES = ["asr_final", "llm_first_token", "first_clause", "tts_first_chunk", "first_audio"]
EXTRA = ["transcript_after_pause"]  # ms from the pause to the final transcript's words


def question_audio(index: int) -> np.ndarray:
    speech = Espeak.instance().synthesize(QUESTIONS[index % len(QUESTIONS)], VOICES[index % len(VOICES)])
    audio = resample(speech.samples, speech.sample_rate, 16_000)
    return np.concatenate([np.zeros(3200, np.float32), audio])


async def one_turn(
    session: LocalSession, turn_id: int, audio: np.ndarray, speculate: bool, settings: Settings
) -> dict[str, float]:
    await session.turn_event(TurnEvent(TurnEventKind.USER_STARTED, turn_id, 0))
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i, offset in enumerate(range(0, len(audio), 320)):  # real time, as a microphone delivers
        delay = start + i * 0.02 - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await session.push_audio(InputAudio(audio[offset : offset + 320], offset))
    silence = np.zeros(320, np.float32)
    waited = 0

    async def pause(ms: int) -> None:
        nonlocal waited
        for _ in range(ms // 20):
            await session.push_audio(InputAudio(silence, 0))
            await asyncio.sleep(0.02)
        waited += ms

    if speculate:
        await pause(settings.speculate_ms)
        await session.turn_event(TurnEvent(TurnEventKind.USER_PAUSED, turn_id, 0))
    await pause(settings.confirm_ms - waited)
    await session.turn_event(TurnEvent(TurnEventKind.TURN_CONFIRMED, turn_id, 0))
    return session.timings.get(turn_id, {})


async def drain(
    session: LocalSession, stop: asyncio.Event, ends: dict[int, asyncio.Event], audio_s: list[float]
) -> None:
    async for item in session.outputs():
        if isinstance(item, AudioChunk):
            audio_s[0] += len(item.samples) / item.sample_rate
        if isinstance(item, ReplyEnd) and item.reason != "cancelled" and item.turn_id in ends:
            ends[item.turn_id].set()
        if stop.is_set():
            return


async def run(turns: int, speculate: bool, asr: str = "whisper") -> dict[str, Any]:
    settings = Settings(engine="local", asr=asr)
    engine = LocalEngine(settings)
    await engine.start()
    session = await engine.open_session(SessionOptions("bench"))
    ends = {turn: asyncio.Event() for turn in range(1, turns + 1)}
    reply_audio_s = [0.0]
    stop = asyncio.Event()
    reader = asyncio.create_task(drain(session, stop, ends, reply_audio_s))
    rows: list[dict[str, float]] = []
    kept = 0
    cpu0, tts0 = time.process_time(), (tts.STATS.cpu_s, tts.STATS.audio_s)
    audios = [question_audio(i) for i in range(turns)]
    for turn in range(1, turns + 1):
        marks = await one_turn(session, turn, audios[turn - 1], speculate, settings)
        await asyncio.wait_for(ends[turn].wait(), 60)
        confirmed = marks.get("confirmed")
        kept += "speculated" in marks
        if confirmed is not None:
            row = {stage: (marks[stage] - confirmed) * 1000 for stage in STAGES if stage in marks}
            if "paused" in marks:
                row["transcript_after_pause"] = (marks["transcript_ready"] - marks["paused"]) * 1000
            rows.append(row)
    recognizer = session._recognizer
    asr_cpu = recognizer.cpu_s / max(recognizer.decoded_s, 1e-9) if recognizer else None
    stop.set()
    await session.close()
    await reader
    await engine.stop()
    tts_cpu = (tts.STATS.cpu_s - tts0[0]) / max(tts.STATS.audio_s - tts0[1], 1e-9)
    return {
        "asr": asr,
        "speculation": speculate,
        "turns": len(rows),
        "speculation_kept": kept,
        "stages_ms": {stage: summary([r[stage] for r in rows if stage in r]) for stage in [*STAGES, *EXTRA]},
        "asr_cpu_ms_per_audio_s": round(1000 * asr_cpu, 1) if asr_cpu is not None else None,
        "tts_cpu_ms_per_audio_s": round(1000 * tts_cpu, 1),
        "process_cpu_s": round(time.process_time() - cpu0, 2),
        "reply_audio_s": round(reply_audio_s[0], 1),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="presence bench engine", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--turns", type=int, default=21)
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="TIMIT-style folder: <speaker>/<utt>.wav + .txt"
    )
    parser.add_argument("--utterances", type=int, default=None, help="recognise only the first N (default: all)")
    parser.add_argument("--cpu-utterances", type=int, default=10, help="utterances fed in real time for CPU")
    parser.add_argument("--json")
    parser.add_argument("--md", default="docs/benchmarks/engine.md")
    args = parser.parse_args(argv)
    turns = 3 if args.quick else args.turns  # 3: every voice once
    utterances = load_utterances(args.data, 6 if args.quick else args.utterances)
    asr_rows = compare(
        [AsrWorker(), WhisperAsr(), WhisperAsr(beam_size=1)], utterances, 2 if args.quick else args.cpu_utterances
    )
    asr_rows[1]["asr"] += " (beam 5, default)"
    asr_rows[2]["asr"] += " (greedy)"
    modes = [("whisper", True), ("whisper", False), ("pocketsphinx", True)]
    results = [asyncio.run(run(turns, speculate, asr)) for asr, speculate in modes]
    rows = []
    for result in results:
        for stage in [*STAGES, *EXTRA]:
            if result["stages_ms"][stage]["n"]:
                mode = "speculative" if result["speculation"] else "at confirmation"
                rows.append({"asr": result["asr"], "mode": mode, "stage": stage, **result["stages_ms"][stage]})
    columns = [
        ("asr", "ASR"),
        ("mode", "mode"),
        ("stage", "stage (ms after confirmation)"),
        ("n", "n"),
        ("p50", "p50"),
        ("p95", "p95"),
        ("p99", "p99"),
    ]
    flat_asr = [
        {
            "asr": r["asr"],
            "utterances": r["utterances"],
            "WER %": r["wer_pct"],
            **{f"final after pause {k}": r["final_after_pause_ms"][k] for k in ("p50", "p95", "p99")},
            "CPU ms / s of speech": r["cpu_ms_per_audio_s"],
        }
        for r in asr_rows
    ]
    command = f"presence bench engine{' --quick' if args.quick else ''} --turns {turns}"
    if args.data != DEFAULT_DATA:
        command += f" --data {args.data}"
    spoken = "; ".join(
        f"{r['asr']} {'speculative' if r['speculation'] else 'at confirmation'}: kept {r['speculation_kept']} of "
        f"{r['turns']}, TTS {r['tts_cpu_ms_per_audio_s']} ms CPU per s of reply audio"
        for r in results
    )
    markdown = "\n\n".join(
        [
            "# Local engine: speech recognisers, and time from turn confirmation to each stage",
            f"Command: `{command}`. The machine runs other work too; compare rows within this run.",
            "## Speech recognition",
            f"{len(utterances)} utterances of `{args.data.name}`. *Final after pause*: ms from the moment the "
            "pause begins to the final transcript (pocketsphinx: it decodes while audio arrives, so only the "
            "end remains; Whisper: the whole turn is decoded at the pause). CPU: decoding CPU per second of "
            f"speech with partial transcripts on, {asr_rows[0]['utterances'] if args.quick else args.cpu_utterances}"
            " utterances fed in real time.",
            table(flat_asr, [(k, k) for k in flat_asr[0]]),
            "## Stages",
            "eSpeak-spoken questions streamed in real time; confirmation after the default silence "
            "(`confirm_ms`), speculation at `speculate_ms`. Negative = done before confirmation "
            "(speculation), held by the session until the turn is confirmed. `transcript_after_pause`: "
            "ms from the pause to the final transcript's words being known.",
            table(rows, columns),
            f"Speculative replies kept at confirmation, and CPU: {spoken}.",
        ]
    )
    write_results(
        {"suite": "engine", "asr": asr_rows, "runs": results},
        markdown,
        args.json,
        Path(args.md) if args.md and not args.quick else None,
    )
    return 0
