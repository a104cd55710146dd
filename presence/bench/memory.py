"""``presence bench memory``: what a session costs the server, and whether closing gives it back.

Starts ``presence serve`` (local engine by default) as its own process, then in waves opens N
sessions at once over real WebSockets, lets each send its hello and (unless ``--hello-only``)
a short spoken phrase so that its recognizer really hears speech (sessions connect four at a
time; all are open together before any closes), closes them all and waits
until the server reports no session. After every wave it reads the server's resident memory
and thread count from /proc. Reported: baseline, peak with N open, after close, per session,
and the time to open a session (connect → agreement).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import websockets

from presence.audio.espeak import Espeak, Voice
from presence.audio.pcm import resample
from presence.bench._stats import summary, table, write_results
from presence.bench.scale import _server_pid
from presence.client.connection import PresenceClient
from presence.testing.servers import presence_server

FRAME = 320
OPENING_AT_ONCE = 4  # sessions connecting at the same moment (all stay open together)


@dataclass(frozen=True, slots=True)
class ProcessState:
    rss_mb: float
    threads: int


def process_state(pid: int) -> ProcessState:
    """Resident memory and thread count of a process, from /proc/PID/status."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return ProcessState(int(fields["VmRSS"].split()[0]) / 1024, int(fields["Threads"]))


def phrase() -> np.ndarray:
    """Half a second of silence, then a spoken phrase (16 kHz); the session closes before the
    pause that would end the turn, so its recognizer is mid-utterance (the case to clean up)."""
    speech = Espeak.instance().synthesize("Hello, where is the station", Voice("en-us", 160, 50))
    audio = resample(speech.samples, speech.sample_rate, 16_000)
    out: np.ndarray = np.concatenate([np.zeros(8000, np.float32), audio]).astype(np.float32)
    return out


def open_sessions(port: int) -> int:
    """The server's ``presence_sessions_active`` gauge (/metrics, which loopback may read)."""
    # Generous: a decoder being loaded holds the GIL for a few hundred ms at a time.
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("presence_sessions_active "):
                return int(float(line.split()[1]))
    raise ValueError("/metrics has no presence_sessions_active")


def server_flags(engine: str, sessions: int) -> tuple[str, ...]:
    """Room for ``sessions`` at once, all from this one address (the per-address caps protect a
    real server from one client; here every client is the benchmark)."""
    room = str(sessions + 10)
    return (
        "--engine", engine, "--max-sessions", room, "--max-sessions-per-client", room,
        "--max-pending-hellos", room, "--max-connections-per-client", str(sessions + 64),
    )  # fmt: skip


async def _one(
    url: str, audio: np.ndarray | None, gate: asyncio.Semaphore, opened: asyncio.Event, release: asyncio.Event
) -> float | None:
    """One session: open (a few at a time), say the phrase, hold until released, close.
    Returns the time to open it in ms, or None when it could not be opened."""
    client = PresenceClient(url)
    try:
        async with gate:
            started = time.perf_counter()
            await client.connect()
            open_ms = (time.perf_counter() - started) * 1000
        if audio is not None:
            for offset in range(0, len(audio), FRAME):  # as fast as the socket takes it
                await client.send_audio(audio[offset : offset + FRAME])
    except (OSError, TimeoutError, ConnectionError, websockets.WebSocketException):
        return None
    finally:
        opened.set()
    await release.wait()
    await client.close()
    return open_ms


async def wave(port: int, sessions: int, audio: np.ndarray | None, pid: int) -> dict[str, Any]:
    """Open ``sessions`` at once, hold them, close them; server state at peak and after close."""
    url = f"ws://127.0.0.1:{port}/v1/session"
    release = asyncio.Event()
    opened = [asyncio.Event() for _ in range(sessions)]
    gate = asyncio.Semaphore(OPENING_AT_ONCE)
    tasks = [asyncio.create_task(_one(url, audio, gate, e, release)) for e in opened]
    await asyncio.gather(*(e.wait() for e in opened))
    failed = sum(1 for t in tasks if t.done() and t.result() is None)
    await _poll(lambda: open_sessions(port) >= sessions - failed, 30)
    peak = process_state(pid)
    release.set()
    open_ms = [ms for ms in await asyncio.gather(*tasks) if ms is not None]
    await _poll(lambda: open_sessions(port) == 0, 30)
    await settle(pid)  # work the sessions queued (decoding their audio) may still be running
    after = process_state(pid)
    return {
        "sessions": sessions,
        "failed_to_open": sessions - len(open_ms),
        "peak": asdict(peak),
        "after_close": asdict(after),
        "open_ms": open_ms,
    }


def cpu_s(pid: int) -> float:
    """CPU seconds a process has used (user + system), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def settle(pid: int, idle_share: float = 0.05, window_s: float = 0.5, limit_s: float = 60) -> None:
    """Wait until the process uses under ``idle_share`` of a core over ``window_s``."""
    for _ in range(int(limit_s / window_s)):
        before = cpu_s(pid)
        await asyncio.sleep(window_s)
        if cpu_s(pid) - before < idle_share * window_s:
            return


async def _poll(condition: Callable[[], bool], limit_s: float) -> None:
    """Wait until ``condition`` holds (the server's own count, read over HTTP) or time runs out."""
    for _ in range(int(limit_s / 0.05)):
        if await asyncio.to_thread(condition):
            return
        await asyncio.sleep(0.05)


def measure(port: int, sessions: int, waves: int, hello_only: bool) -> dict[str, Any]:
    """Baseline, then ``waves`` waves of ``sessions``; returns everything measured."""
    pid = _server_pid(port)
    audio = None if hello_only else phrase()
    baseline = process_state(pid)
    rows = [asyncio.run(wave(port, sessions, audio, pid)) for _ in range(waves)]
    return {"pid": pid, "baseline": asdict(baseline), "waves": rows}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="presence bench memory", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 waves of 10 sessions")
    parser.add_argument("--sessions", type=int, default=100, help="sessions open at once in each wave")
    parser.add_argument("--waves", type=int, default=3)
    parser.add_argument("--engine", default="local")
    parser.add_argument("--hello-only", action="store_true", help="sessions send only their hello")
    parser.add_argument("--json")
    parser.add_argument("--md", default="docs/benchmarks/memory.md")
    args = parser.parse_args(argv)
    sessions, waves = (10, 2) if args.quick else (args.sessions, args.waves)
    flags = server_flags(args.engine, sessions)
    with presence_server(*flags, startup_s=180) as port:
        result = measure(port, sessions, waves, args.hello_only)
    base = result["baseline"]
    rows = [{"wave": "baseline", "open": 0, "rss MB": base["rss_mb"], "threads": base["threads"]}]
    for i, w in enumerate(result["waves"], 1):
        stages = ((f"{i}: all open", sessions, w["peak"]), (f"{i}: all closed", 0, w["after_close"]))
        for label, open_now, state in stages:
            held = open_now - w["failed_to_open"] if open_now else 0
            rows.append({"wave": label, "open": held, "rss MB": state["rss_mb"], "threads": state["threads"]})
    last = result["waves"][-1]["after_close"]
    opens = summary([ms for w in result["waves"] for ms in w["open_ms"]])
    command = (
        f"presence bench memory{' --quick' if args.quick else f' --sessions {sessions} --waves {waves}'}"
        f"{' --hello-only' if args.hello_only else ''} --engine {args.engine}"
    )
    markdown = "\n\n".join(
        [
            f"# Memory per session ({args.engine} engine)",
            f"Command: `{command}`. Each wave opens {sessions} sessions at once over real WebSockets"
            + ("" if args.hello_only else ", each sends a short spoken phrase")
            + ", then closes them all; the server's RSS and thread count are read from /proc.",
            table(rows, [(k, k) for k in rows[0]]),
            f"After the last wave closed: {last['rss_mb'] - base['rss_mb']:+.1f} MB and "
            f"{last['threads'] - base['threads']:+d} threads against the baseline. Opening a session "
            f"(connect → agreement, {opens['n']} sessions): p50 {opens['p50']} ms, p95 {opens['p95']} ms, "
            f"p99 {opens['p99']} ms.",
        ]
    )
    result["open_ms"] = opens
    write_results(
        {"suite": "memory", "command": command, **result},
        markdown,
        args.json,
        Path(args.md) if args.md and not args.quick else None,
    )
    return 0
