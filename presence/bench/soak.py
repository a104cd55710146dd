"""``presence bench soak``: many sessions talking for minutes, then the exhaustion and fault probes.

A real ``presence serve`` process (scripted engine unless ``--engine``) takes N concurrent
sessions × M minutes of turns spoken from TIMIT utterances (``--data``, any TIMIT-style
folder of 16 kHz WAVs with .phn marks), each session streaming in real time and keeping its
microphone open while the agent answers. Reported: turns started, completed and lost (no
record, an error, or no reply audio), the server's RSS at the start and end (/proc/PID/status)
and each minute's p50/p95/p99 of confirm → first reply audio at the client. Then every probe
of issue #12 runs at full size on a fresh server (presence/testing/probes.py), and ``--fuzz N``
puts N fuzzed frames through the decoder. ``--quick`` is the CI size.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from presence.audio.wavfile import read_wav16
from presence.bench._stats import summary, table, write_results
from presence.bench.g2g import data_dir
from presence.client.connection import PresenceClient
from presence.testing import faults as faults
from presence.testing import probes as probes
from presence.testing.corpus import speech_bounds
from presence.testing.fuzz import fuzz_decoder
from presence.testing.servers import ServerProcess, presence_process
from presence.testing.turns import TurnOutcome, speak_turn
from presence.testing.wire import sessions_active

MB = 2**20


@dataclass(frozen=True, slots=True)
class TurnRow:
    session: int
    started_s: float  # since the soak began
    outcome: TurnOutcome


def load_utterances(root: Path, limit: int = 200) -> list[np.ndarray]:
    """TIMIT utterances trimmed to their speech (when a .phn gives its bounds), as 16 kHz float32."""
    out = []
    for wav in sorted(root.rglob("*.wav"))[:limit]:
        audio = read_wav16(wav)
        phn = wav.with_suffix(".phn")
        if phn.exists():
            start, end = speech_bounds(phn)
            audio = audio[start:end]
        out.append(audio.astype(np.float32) / 32768)
    if not out:
        raise SystemExit(f"no WAV files under {root}")
    return out


async def _session(
    url: str, index: int, utterances: list[np.ndarray], t0: float, until: float, rows: list[TurnRow]
) -> None:
    rng = random.Random(index)
    await asyncio.sleep(rng.uniform(0, 2.0))  # sessions start staggered, as users do
    client = PresenceClient(url)
    await client.connect()
    try:
        while time.monotonic() < until and client.close_code is None:
            started = time.monotonic() - t0
            outcome = await speak_turn(client, rng.choice(utterances), limit_s=15)
            rows.append(TurnRow(index, started, outcome))
    finally:
        await client.close()


async def _rss_sampler(server: ServerProcess, t0: float, samples: list[tuple[float, int]]) -> None:
    while True:
        samples.append((time.monotonic() - t0, server.rss_bytes()))
        await asyncio.sleep(1.0)


async def _lag_sampler(t0: float, samples: list[tuple[float, float]], every_s: float = 0.1) -> None:
    """How late this process's event loop wakes up: the clients' own share of the latency."""
    while True:
        before = time.monotonic()
        await asyncio.sleep(every_s)
        samples.append((before - t0, (time.monotonic() - before - every_s) * 1000))


def _load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


async def run_soak(
    server: ServerProcess, sessions: int, minutes: float, utterances: list[np.ndarray]
) -> dict[str, Any]:
    rows: list[TurnRow] = []
    rss: list[tuple[float, int]] = []
    lag: list[tuple[float, float]] = []
    t0 = time.monotonic()
    rss_start = server.rss_bytes()
    load_start = _load_average()
    sampler = asyncio.create_task(_rss_sampler(server, t0, rss), name="soak-rss")
    lagger = asyncio.create_task(_lag_sampler(t0, lag), name="soak-lag")
    until = t0 + minutes * 60
    await asyncio.gather(*(_session(server.url, i, utterances, t0, until, rows) for i in range(sessions)))
    released = await probes.wait_until(_released(server), 15)
    sampler.cancel()
    lagger.cancel()
    rss_end = server.rss_bytes()
    per_minute = []
    for minute in range(int(np.ceil(minutes)) or 1):
        in_minute = [r for r in rows if minute * 60 <= r.started_s < (minute + 1) * 60]
        latency = [r.outcome.first_audio_ms for r in in_minute if r.outcome.first_audio_ms is not None]
        server_ms = [r.outcome.server_ms for r in in_minute if r.outcome.server_ms is not None]
        rss_in = [b for t, b in rss if t < (minute + 1) * 60]
        lag_in = [ms for t, ms in lag if minute * 60 <= t < (minute + 1) * 60]
        per_minute.append(
            {
                "minute": minute + 1,
                "turns": len(in_minute),
                "lost": sum(1 for r in in_minute if not r.outcome.completed),
                "first_audio_ms": summary(latency, 1),
                "server_ms": summary(server_ms, 1),
                "client_loop_lag_ms": summary(lag_in, 1),
                "rss_mb": round(rss_in[-1] / MB, 1) if rss_in else None,
            }
        )
    lost = [r for r in rows if not r.outcome.completed]
    reasons: dict[str, int] = {}
    for r in lost:
        record = r.outcome.record
        key = r.outcome.error or (
            "no record" if record is None else "interrupted" if record.get("interrupted") else "no reply audio"
        )
        reasons[key] = reasons.get(key, 0) + 1
    return {
        "sessions": sessions,
        "minutes": minutes,
        "turns": len(rows),
        "completed": len(rows) - len(lost),
        "lost": len(lost),
        "lost_reasons": reasons,
        "first_audio_ms": summary([r.outcome.first_audio_ms for r in rows if r.outcome.first_audio_ms is not None], 1),
        "per_minute": per_minute,
        "rss_start_mb": round(rss_start / MB, 1),
        "rss_peak_mb": round(max((b for _, b in rss), default=rss_start) / MB, 1),
        "rss_end_mb": round(rss_end / MB, 1),
        "sessions_released_s": round(released, 2) if released is not None else None,
        "load_average": [load_start, _load_average()],
    }


def _released(server: ServerProcess) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await sessions_active(server.port) == 0

    return check


ProbeRun = Callable[[ServerProcess], Coroutine[Any, Any, probes.Probe]]


def probe_plan(quick: bool, speech: np.ndarray) -> list[tuple[tuple[str, ...], int | None, ProbeRun]]:
    """(extra server flags, descriptor cap, the probe) for each probe, at CI or full size.

    Probes with a well-behaved turn speak ``speech``: real speech, which every VAD accepts."""
    q, sp = quick, speech
    return [
        (
            ("--max-sessions", "20" if q else "200"),
            None,
            lambda s: probes.pre_hello_flood(s, 30 if q else 250),
        ),
        ((), 256 if q else 1024, lambda s: probes.slowloris(s, 300 if q else 1100, 2 if q else 10)),
        ((), None, lambda s: probes.ping_flood(s, 40 if q else 400, 5 if q else 30)),
        ((), None, lambda s: probes.timestamp_attack(s, "far", watch_s=5 if q else 10, speech=sp)),
        (
            (),
            None,
            lambda s: probes.timestamp_attack(s, "jumps", frames=200 if q else 1000, watch_s=5 if q else 15, speech=sp),
        ),
        (("--max-sessions", "100" if q else "200"), None, lambda s: probes.many_sessions(s, 200)),
        (
            ("--scripted-reply-ms", "4000", "--max-lead-ms", "0"),
            None,
            lambda s: faults.pause_mid_reply(s, 3.0, speech=sp),
        ),
        ((), None, lambda s: faults.drop_mid_turn(s, 5 if q else 12, speech=sp)),
    ]


def run_probes(base_flags: tuple[str, ...], quick: bool, speech: np.ndarray) -> list[probes.Probe]:
    results = []
    for flags, nofile, run in probe_plan(quick, speech):
        with presence_process(*base_flags, *flags, nofile=nofile, stop_timeout_s=5) as server:
            probe = asyncio.run(run(server))
            probe.measured["server_alive_after"] = server.alive()
        print(probe.summary(), flush=True)
        results.append(probe)
    return results


def _markdown(command: str, soak: dict[str, Any] | None, found: list[probes.Probe], fuzz: dict[str, Any] | None) -> str:
    parts = [
        "# Soak and reliability probes (issue #12)",
        f"Command: `{command}`. One `presence serve` process per run; clients in the benchmark's own "
        "process on the same 2 cores. Latency: confirming input frame sent → first reply audio "
        "received, at the client, in ms; *server*: the server's own reply releasable → first audio "
        "frame sent, from its turn records.",
    ]
    if soak is not None:
        parts += [
            f"## Soak: {soak['sessions']} sessions × {soak['minutes']:g} min",
            f"Turns: **{soak['turns']}** started, **{soak['completed']}** completed, **{soak['lost']}** lost"
            + (f" {soak['lost_reasons']}" if soak["lost_reasons"] else "")
            + f". Server RSS: start **{soak['rss_start_mb']} MB**, peak "
            f"{soak['rss_peak_mb']} MB, end **{soak['rss_end_mb']} MB** (sessions released after "
            f"{soak['sessions_released_s']} s). Load average (1 min) of the shared machine: "
            f"{soak['load_average'][0]:.1f} at the start, {soak['load_average'][1]:.1f} at the end; the client-side "
            "latency includes the clients' own event-loop lag (last column), the server column does not.",
            table(
                [
                    {"minute": m["minute"], "turns": m["turns"], "lost": m["lost"], "rss": m["rss_mb"]}
                    | {k: m["first_audio_ms"][k] for k in ("p50", "p95", "p99")}
                    | {f"server {k}": m["server_ms"][k] for k in ("p50", "p99")}
                    | {"lag": m["client_loop_lag_ms"]["p99"]}
                    for m in soak["per_minute"]
                ],
                [
                    ("minute", "minute"),
                    ("turns", "turns"),
                    ("lost", "lost"),
                    ("p50", "p50 ms"),
                    ("p95", "p95 ms"),
                    ("p99", "p99 ms"),
                    ("server p50", "server p50 ms"),
                    ("server p99", "server p99 ms"),
                    ("lag", "client loop lag p99 ms"),
                    ("rss", "RSS MB"),
                ],
            ),
        ]
    if found:
        rows = [
            {
                "probe": p.name,
                "expectation": p.expectation,
                "verdict": "held" if p.passed else "**FAILED**",
                "measured": ", ".join(f"{k}={v}" for k, v in p.measured.items()),
            }
            for p in found
        ]
        parts += [
            "## Exhaustion and fault probes",
            table(
                rows,
                [("probe", "probe"), ("expectation", "expectation"), ("verdict", "verdict"), ("measured", "measured")],
            ),
        ]
    if fuzz is not None:
        parts += [
            "## Decoder fuzz",
            f"{fuzz['inputs']} inputs (seed {fuzz['seed']}): {fuzz['frames']} decoded, "
            f"{sum(fuzz['protocol_errors'].values())} ProtocolErrors, "
            f"**{sum(fuzz['escaped'].values())} other exceptions** {fuzz['escaped'] or ''}.",
            "\n".join(f"- `{e['error']}` from `{e['input_hex'][:64]}…`" for e in fuzz["examples"][:3]),
        ]
    return "\n\n".join(parts) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="presence bench soak", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="CI size: 2 sessions × 0.15 min, small probes")
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--engine", default="scripted", choices=["scripted", "local", "gemini", "openai"])
    parser.add_argument("--vad", choices=["silero", "energy"], help="the server's VAD (default: the server's own)")
    parser.add_argument("--data", help="TIMIT-style folder (default: $PRESENCE_DATA_DIR or ../shared/data)")
    parser.add_argument("--no-soak", action="store_true", help="only the probes and the fuzz")
    parser.add_argument("--no-probes", action="store_true")
    parser.add_argument("--fuzz", type=int, default=None, help="fuzzed decoder inputs (full run: 1000000)")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--json")
    parser.add_argument("--md", default="docs/benchmarks/soak.md", help="Markdown report ('' for none)")
    args = parser.parse_args(argv)
    sessions, minutes = (2, 0.15) if args.quick else (args.sessions, args.minutes)
    fuzz_count = args.fuzz if args.fuzz is not None else (2000 if args.quick else 0)
    base = ("--engine", args.engine, *(("--vad", args.vad) if args.vad else ()))
    soak = None
    utterances = load_utterances(data_dir(args.data))
    if not args.no_soak:
        with presence_process(*base, "--max-sessions", str(sessions + 10)) as server:
            soak = asyncio.run(run_soak(server, sessions, minutes, utterances))
        print(f"soak: {soak['turns']} turns, {soak['lost']} lost, RSS {soak['rss_start_mb']} → {soak['rss_end_mb']} MB")
    found = [] if args.no_probes else run_probes(base, args.quick, utterances[0])
    fuzz = fuzz_decoder(fuzz_count, args.seed).to_json() if fuzz_count else None
    command = "presence bench soak " + " ".join(argv)
    results = {
        "suite": "soak",
        "command": command,
        "soak": soak,
        "probes": [{"name": p.name, "expectation": p.expectation, "passed": p.passed, **p.measured} for p in found],
        "fuzz": fuzz,
    }
    write_results(
        results, _markdown(command, soak, found, fuzz), args.json, Path(args.md) if args.md and not args.quick else None
    )
    return 0
