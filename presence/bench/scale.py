"""``presence bench scale``: many concurrent sessions against one server process.

For N sessions at once (default 1, 10, 50, 100, 200), each driven by the Python client in
real time with the scripted engine, it reports p50/p99 of the server's own overhead (reply
releasable → first audio frame sent), of the client's confirm → first audio, and of the
reply frames' send jitter (the server paces audio in real time with ``--max-lead-ms 0``, so
every frame has an exact due time; jitter is arrival minus due time at the client), plus the
server's CPU (% of one core) and resident memory per session. It names the largest N whose
p99 overhead stays under 20 ms. All clients run in this one process, which loads the same two
cores; the report says so.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from presence.audio.signals import silence, speech_like
from presence.bench._stats import summary, table, write_results
from presence.client.connection import PresenceClient
from presence.testing.servers import presence_server

FRAME = 320
OUTPUT_RATE = 24_000
LIMIT_MS = 20.0


def _proc_stats(pid: int) -> tuple[float, int]:
    """(CPU seconds used, resident bytes) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return cpu, rss_pages * os.sysconf("SC_PAGE_SIZE")


async def _one_session(url: str, turns: int, offset_s: float, results: dict[str, list[float]]) -> None:
    await asyncio.sleep(offset_s)
    client = PresenceClient(url)
    await client.connect()
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent = 0

    async def send(audio: np.ndarray) -> None:
        nonlocal sent
        for i in range(0, len(audio), FRAME):
            due = start + sent * 0.02
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await client.send_audio(audio[i : i + FRAME])
            sent += 1

    for turn in range(1, turns + 1):
        await send(np.concatenate([speech_like(0.6, seed=turn), silence(0.4)]))
        deadline = loop.time() + 10
        while loop.time() < deadline and not any(
            b.get("turn_id") == turn for b in client.received.events_of("metrics")
        ):
            await send(silence(0.1))
    await client.close()
    for body in client.received.events_of("metrics"):
        if body.get("first_audio_sent_ms") is None:
            continue
        release = max(body["turn_confirmed_ms"], body["engine_first_audio_ms"])
        results["overhead_ms"].append(body["first_audio_sent_ms"] - release)
        confirmed = body.get("turn_confirmed_sample")
        sent_at = client.sent_time_of(confirmed - 1) if confirmed else None
        start_sample = body["reply_start_sample"]
        frames = [(at, f.timestamp) for at, f in client.received.audio if start_sample <= f.timestamp and f.data]
        frames = [x for x in frames if x[1] < body["reply_end_sample"]]
        if not frames:
            continue
        if sent_at is not None:
            results["confirm_to_audio_ms"].append((frames[0][0] - sent_at) * 1000)
        t0, s0 = frames[0]
        deviations = [((at - t0) - (ts - s0) / OUTPUT_RATE) * 1000 for at, ts in frames]
        results["jitter_ms"].extend(abs(d - min(deviations)) for d in deviations)


async def _run_level(url: str, sessions: int, turns: int, pid: int) -> dict[str, Any]:
    results: dict[str, list[float]] = {"overhead_ms": [], "confirm_to_audio_ms": [], "jitter_ms": []}
    rng = random.Random(sessions)
    cpu0, rss0 = _proc_stats(pid)
    wall0 = time.monotonic()
    await asyncio.gather(*(_one_session(url, turns, rng.uniform(0, 1.0), results) for _ in range(sessions)))
    cpu1, rss1 = _proc_stats(pid)
    wall = time.monotonic() - wall0
    return {
        "sessions": sessions,
        "turns": len(results["overhead_ms"]),
        "overhead_ms": summary(results["overhead_ms"]),
        "confirm_to_audio_ms": summary(results["confirm_to_audio_ms"]),
        "send_jitter_ms": summary(results["jitter_ms"]),
        "server_cpu_pct_per_session": round(100 * (cpu1 - cpu0) / wall / sessions, 3),
        "server_rss_mb": round(rss1 / 2**20, 1),
        "server_rss_growth_kb_per_session": round((rss1 - rss0) / 1024 / sessions, 1),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="presence bench scale", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sessions", default="1,10,50,100,200", help="comma-separated N values")
    parser.add_argument("--turns", type=int, default=3, help="turns per session")
    parser.add_argument("--json")
    parser.add_argument("--md", default="docs/benchmarks/scale.md")
    args = parser.parse_args(argv)
    levels = [1, 4] if args.quick else [int(n) for n in args.sessions.split(",")]
    turns = 1 if args.quick else args.turns
    flags = (
        "--engine",
        "scripted",
        "--vad",
        "energy",
        "--max-lead-ms",
        "0",
        "--scripted-reply-ms",
        "600",
        "--max-sessions",
        str(max(levels) + 10),
        # Every client of this benchmark is one address (127.0.0.1): lift the per-address caps
        # that protect a real server from one client, and the pending-hello pool.
        "--max-sessions-per-client",
        str(max(levels) + 10),
        "--max-connections-per-client",
        str(max(levels) + 64),
        "--max-pending-hellos",
        str(max(levels) + 10),
    )
    rows = []
    with presence_server(*flags) as port:
        pid = _server_pid(port)
        for n in levels:
            rows.append(asyncio.run(_run_level(f"ws://127.0.0.1:{port}/v1/session", n, turns, pid)))
            print(f"N={n}: {rows[-1]}", flush=True)
    ok = [r["sessions"] for r in rows if r["overhead_ms"]["p99"] is not None and r["overhead_ms"]["p99"] < LIMIT_MS]
    flat = [
        {
            "sessions": r["sessions"],
            "turns": r["turns"],
            "overhead p50": r["overhead_ms"]["p50"],
            "overhead p99": r["overhead_ms"]["p99"],
            "confirm→audio p50": r["confirm_to_audio_ms"]["p50"],
            "confirm→audio p99": r["confirm_to_audio_ms"]["p99"],
            "jitter p50": r["send_jitter_ms"]["p50"],
            "jitter p99": r["send_jitter_ms"]["p99"],
            "cpu %/session": r["server_cpu_pct_per_session"],
            "rss MB": r["server_rss_mb"],
        }
        for r in rows
    ]
    columns = [(k, k) for k in flat[0]] if flat else []
    largest = max(ok) if ok else None
    markdown = "\n\n".join(
        [
            "# Scale: concurrent sessions on one server process (scripted engine)",
            f"Command: `presence bench scale{' --quick' if args.quick else ''} --sessions "
            f"{','.join(map(str, levels))} --turns {turns}`. Times in ms. Clients run in the benchmark's "
            "own process on the same 2 cores, so client lag is inside these numbers.",
            table(flat, columns),
            f"Largest N with p99 overhead under {LIMIT_MS:.0f} ms: **{largest}**.",
        ]
    )
    write_results(
        {"suite": "scale", "levels": rows, "largest_ok": largest},
        markdown,
        args.json,
        Path(args.md) if args.md and not args.quick else None,
    )
    return 0


def _server_pid(port: int) -> int:
    """The pid listening on ``port`` (the server we just started), from /proc/net/tcp."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        if parts[3] == "0A" and int(parts[1].split(":")[1], 16) == port:
            inode = parts[9]
    if inode is None:
        raise RuntimeError(f"no listener on port {port}")
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            for fd in (pid_dir / "fd").iterdir():
                if os.readlink(fd) == f"socket:[{inode}]":
                    return int(pid_dir.name)
        except OSError:
            continue
    raise RuntimeError(f"no process owns the listener on port {port}")
