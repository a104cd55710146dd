"""``presence bench pipecat``: presence and Pipecat side by side, on the same scripted work.

Both frameworks serve the same bot over a loopback WebSocket: a scripted reply (the same
1.2 s of presence's synthetic voice, 24 kHz, after the same think time) to real speech (TIMIT
sentences from ../shared/data). One Python client drives both, through a thin adapter per wire
format (presence's protocol; raw PCM messages for Pipecat), each connection fed like a live
microphone (20 ms frames in real time, the speaker's background noise between sentences), and
the two alternate turn by turn in the same run, so machine noise lands on both alike.

Per turn the client measures, from sending the frame that holds the last speech sample (the
TIMIT alignment gives the true end of speech) to receiving the first reply audio byte:

(a) time to first audio, each framework at its own default turn-taking (presence: Silero VAD,
    800 ms of silence; Pipecat: Silero VAD stopping after 0.2 s, then its Smart Turn v3 model),
    with the think time given by ``--think-ms``;
(b) overhead with endpointing equalised: both wait the same fixed silence (``--silence-ms``,
    Silero VAD in both, nothing after it) and think for 0 ms, and that silence is subtracted;
(c) that overhead split, from each server's report of the input frame that ended the turn, into
    endpoint lag (how late the VAD saw the end) and decision → first audio (the framework).

and, for every reply, the arrival jitter of its audio: gaps between chunks and how late each
chunk is against playing the reply from its first byte (the jitter buffer a client needs).
Pipecat runs in its own virtual environment, made on first use (``PRESENCE_PIPECAT_ENV``,
default ``~/.cache/presence/bench-pipecat``), from ``pipecat-ai`` on PyPI.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from presence.bench._microphone import Microphone, TurnAudio, TurnResult, make_turn, run_turn
from presence.bench._pipecat_env import (
    PIPECAT_VERSION,
    ensure_pipecat_env,
    pipecat_env_dir,
    pipecat_server,
    write_replies,
)
from presence.bench._pipecat_report import SYSTEMS, Setup, plot, render, summarise
from presence.bench._pipecat_wires import PipecatWire, PresenceWire, Wire
from presence.bench._stats import git_revision, machine, write_results
from presence.testing.corpus import DEFAULT_TIMIT as DEFAULT_DATA
from presence.testing.corpus import Utterance, load_speakers
from presence.testing.servers import presence_server


def setups(think_ms: int, silence_ms: int, reply_ms: int, lipsync: str | None = None) -> list[Setup]:
    scripted: tuple[str, ...] = ("--engine", "scripted", "--vad", "silero", "--scripted-reply-ms", str(reply_ms))
    if lipsync is not None:
        scripted += ("--lipsync", lipsync)
    return [
        Setup(
            "defaults",
            (*scripted, "--scripted-think-ms", str(think_ms)),
            ("--turn", "smart", "--think-ms", str(think_ms)),
            0.0,
        ),
        Setup(
            "equalised",
            (*scripted, "--scripted-think-ms", "0", "--confirm-rule", "fixed", "--confirm-ms", str(silence_ms)),
            ("--turn", "silence", "--stop-secs", str(silence_ms / 1000), "--think-ms", "0"),
            float(silence_ms),
        ),
    ]


def pick_turns(utterances: dict[str, list[Utterance]], count: int, seed: int) -> list[TurnAudio]:
    """``count`` sentences, round-robin over speakers so voices vary from turn to turn."""
    rng = np.random.default_rng(seed)
    speakers = sorted(utterances)
    chosen: list[TurnAudio] = []
    for index in range(count):
        pool = utterances[speakers[index % len(speakers)]]
        chosen.append(make_turn(pool[(index // len(speakers)) % len(pool)], rng))
    return chosen


async def alternate(
    ports: dict[str, int], warm_up: TurnAudio, turns: list[TurnAudio], reply_s: float
) -> dict[str, list[TurnResult]]:
    """Every turn on both systems, the order flipping each turn; one connection per system.

    Each system first answers one warm-up turn (model sessions, caches), which is not counted.
    """
    wires: dict[str, Wire] = {
        "presence": await PresenceWire.open(ports["presence"]),
        "pipecat": await PipecatWire.open(ports["pipecat"]),
    }
    mics = {name: Microphone(wire, warm_up.noise_rms, np.random.default_rng(7)) for name, wire in wires.items()}
    for mic in mics.values():
        mic.start()
    results: dict[str, list[TurnResult]] = {name: [] for name in SYSTEMS}
    try:
        for name in SYSTEMS:
            await run_turn(mics[name], warm_up, reply_s)
        for index, turn in enumerate(turns):
            order = SYSTEMS if index % 2 == 0 else SYSTEMS[::-1]
            for name in order:
                results[name].append(await run_turn(mics[name], turn, reply_s))
    finally:
        for mic in mics.values():
            await mic.stop()
        for wire in wires.values():
            await wire.close()
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="presence bench pipecat", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="CI-sized run (2 turns per comparison)")
    parser.add_argument("--turns", type=int, default=24, help="turns per system per comparison")
    parser.add_argument("--think-ms", type=int, default=200, help="scripted think time in comparison (a)")
    parser.add_argument("--silence-ms", type=int, default=320, help="equalised end-of-turn silence in (b)")
    parser.add_argument("--reply-ms", type=int, default=1200, help="length of the scripted reply")
    parser.add_argument("--lipsync", help="presence's lip-sync (default: its own default; Pipecat animates nothing)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="TIMIT sample folder")
    parser.add_argument("--json", help="write results as JSON here")
    parser.add_argument("--md", default="docs/benchmarks/pipecat.md", help="Markdown report path ('' for none)")
    parser.add_argument("--plot", type=Path, help="write the distributions PNG here")
    args = parser.parse_args(argv)
    turns = 2 if args.quick else args.turns
    command = f"presence bench pipecat {'--quick' if args.quick else f'--turns {turns}'}"
    if args.lipsync:
        command += f" --lipsync {args.lipsync}"
    python = ensure_pipecat_env(pipecat_env_dir())
    warm_up, *sentences = pick_turns(load_speakers(args.data), turns + 1, seed=1)
    comparisons = []
    samples: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="presence-pipecat-") as folder:
        write_replies(Path(folder), args.reply_ms)
        for setup in setups(args.think_ms, args.silence_ms, args.reply_ms, args.lipsync):
            print(f"pipecat: comparison '{setup.name}', {turns} turns each, alternating", flush=True)
            with (
                presence_server(*setup.presence_flags) as presence_port,
                pipecat_server(python, Path(folder), *setup.pipecat_flags) as pipecat_port,
            ):
                ports = {"presence": presence_port, "pipecat": pipecat_port}
                results = asyncio.run(alternate(ports, warm_up, sentences, args.reply_ms / 1000))
            comparisons.append(summarise(setup, results))
            samples[setup.name] = {
                name: [t.first_audio_ms - setup.subtract_ms for t in results[name] if t.first_audio_ms is not None]
                for name in SYSTEMS
            }
    report: dict[str, Any] = {
        "suite": "pipecat",
        "pipecat_version": PIPECAT_VERSION,
        "turns": turns,
        "think_ms": args.think_ms,
        "silence_ms": args.silence_ms,
        "reply_ms": args.reply_ms,
        "presence_lipsync": args.lipsync or "default",
        "comparisons": comparisons,
    }
    markdown = render({**report, "machine": machine(), "revision": git_revision()}, command)
    md_path = Path(args.md) if args.md and not args.quick else None
    write_results(report, markdown, args.json, md_path)
    if args.plot:
        plot(report, samples, args.plot)
    return 0
