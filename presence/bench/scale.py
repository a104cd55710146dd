"""``presence bench scale``: many concurrent sessions against ``presence serve --workers W``.

For each worker count (default 1 and 2) and each N concurrent sessions (default 10, 50, 100,
200), N sessions are driven in real time with the scripted engine by the Python client, from
``--client-procs`` separate processes (pinned to cores away from the server's when the machine
has enough of them), through Debian's nginx with deploy/nginx/presence-lb.conf (plain HTTP
here) unless ``--no-nginx``. It reports p50/p99 of the server's own overhead (reply
releasable → first audio frame sent), of the client's confirm → first audio, and of the reply
frames' send jitter (the server paces audio in real time with ``--max-lead-ms 0``, so every
frame has an exact due time; jitter is arrival minus due time at the client), plus the
server's CPU (% of one core, all its processes) and memory per session, and names for each
worker count the largest N whose p99 overhead stays under 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import websockets

from presence.audio.signals import silence, speech_like
from presence.bench._stats import summary, table, write_results
from presence.client.auth import authorised_url
from presence.client.connection import PresenceClient
from presence.testing.nginx import nginx_in_front
from presence.testing.servers import presence_process

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


def _client_process(
    url: str, sessions: int, turns: int, seed: int, ready: Any, go: Any, out: Any, cores: list[int] | None
) -> None:
    """One client process: ``sessions`` sessions, started together once ``go`` is set."""
    if cores:
        os.sched_setaffinity(0, cores)
    results: dict[str, list[float]] = {"overhead_ms": [], "confirm_to_audio_ms": [], "jitter_ms": [], "failed": []}
    rng = random.Random(seed)
    # One token for all of this process's sessions (a loopback server hands its pages tokens).
    os.environ["PRESENCE_TOKEN"] = asyncio.run(authorised_url(url)).partition("token=")[2]
    ready.put(os.getpid())
    go.wait()

    async def run() -> None:
        await asyncio.gather(*(_counted(url, turns, rng.uniform(0, 1.0), results) for _ in range(sessions)))

    try:
        asyncio.run(run())
    finally:
        out.put(results)


async def _counted(url: str, turns: int, offset_s: float, results: dict[str, list[float]]) -> None:
    """A session that could not open or broke off counts as failed; the others still report."""
    try:
        await _one_session(url, turns, offset_s, results)
    except (OSError, TimeoutError, websockets.WebSocketException):
        results["failed"].append(1.0)


def _tree(pid: int) -> list[int]:
    """A process and its descendants (the supervisor and its workers)."""
    pids = [pid]
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        pids += _tree(int(child))
    return pids


def _tree_stats(pid: int) -> tuple[float, int]:
    cpu, rss = 0.0, 0
    for member in _tree(pid):
        with contextlib.suppress(OSError):
            c, r = _proc_stats(member)
            cpu, rss = cpu + c, rss + r
    return cpu, rss


def _placement(workers: int, client_procs: int) -> tuple[list[int] | None, list[int] | None]:
    """(server cores, client cores) when the machine has a core for each worker and each client
    process, else (None, None): squeezing a worker onto fewer cores than the unpinned run
    would have would make the comparison unfair."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < workers + client_procs:
        return None, None
    return cores[:workers], cores[workers:]


def _run_level(url: str, sessions: int, turns: int, pid: int, procs: int, cores: list[int] | None) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    ready, out, go = context.Queue(), context.Queue(), context.Event()
    shares = [sessions // procs + (1 if i < sessions % procs else 0) for i in range(procs)]
    clients = [
        context.Process(target=_client_process, args=(url, share, turns, sessions * 100 + i, ready, go, out, cores))
        for i, share in enumerate(shares)
        if share
    ]
    for client in clients:
        client.start()
    for _ in clients:
        ready.get(timeout=60)
    cpu0, rss0 = _tree_stats(pid)
    load0 = os.getloadavg()[0]
    wall0 = time.monotonic()
    go.set()
    parts = [out.get(timeout=300) for _ in clients]
    cpu1, rss1 = _tree_stats(pid)
    wall = time.monotonic() - wall0
    for client in clients:
        client.join(30)
    results = {key: [v for part in parts for v in part[key]] for key in parts[0]}
    return {
        "sessions": sessions,
        "failed_sessions": len(results["failed"]),
        "load_average_1min": round(max(load0, os.getloadavg()[0]), 1),
        "turns": len(results["overhead_ms"]),
        "overhead_ms": summary(results["overhead_ms"]),
        "confirm_to_audio_ms": summary(results["confirm_to_audio_ms"]),
        "send_jitter_ms": summary(results["jitter_ms"]),
        "server_cpu_pct_per_session": round(100 * (cpu1 - cpu0) / wall / sessions, 3),
        "server_rss_mb": round(rss1 / 2**20, 1),
        "server_rss_growth_kb_per_session": round((rss1 - rss0) / 1024 / sessions, 1),
    }


def _pin(pid: int, cores: list[int] | None) -> None:
    if cores:
        for member in _tree(pid):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(member, cores)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="presence bench scale", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sessions", default="10,50,100,200", help="comma-separated N values")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--turns", type=int, default=2, help="turns per session")
    parser.add_argument("--client-procs", type=int, default=2, help="client processes sharing the sessions")
    parser.add_argument("--no-nginx", action="store_true", help="connect to the server directly")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        help="after the rows, N sessions against one worker under cProfile: where its time goes (0: off)",
    )
    parser.add_argument("--json")
    parser.add_argument("--md", default="docs/benchmarks/scale.md")
    args = parser.parse_args(argv)
    levels = [1, 4] if args.quick else [int(n) for n in args.sessions.split(",")]
    # --quick (CI) checks the multi-worker path only: one server start instead of two.
    worker_counts = [2] if args.quick else [int(n) for n in args.workers.split(",")]
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
        "--trusted-proxies",
        "127.0.0.1",
    )
    rows = []
    with contextlib.ExitStack() as stack:
        # Every server runs for the whole benchmark and the levels alternate between them, so
        # that a change in the machine's load (it is shared) falls on both worker counts alike.
        targets = []
        for workers in worker_counts:
            server_cores, client_cores = _placement(workers, args.client_procs)
            server = stack.enter_context(presence_process(*flags, "--workers", str(workers)))
            _pin(server.pid, server_cores)
            port = server.port
            if not args.no_nginx:
                port = stack.enter_context(nginx_in_front([server.port], max_connections=4 * max(levels) + 64))
            targets.append((workers, server.pid, f"ws://127.0.0.1:{port}/v1/session", client_cores))
        for n in levels:
            for workers, pid, url, client_cores in targets:
                level = _run_level(url, n, turns, pid, args.client_procs, client_cores)
                row = {"workers": workers, "clients_pinned_apart": client_cores is not None, **level}
                rows.append(row)
                print(f"workers={workers} N={n}: {row}", flush=True)
    rows.sort(key=lambda r: (r["workers"], r["sessions"]))
    largest: dict[int, int | None] = {}
    for workers in worker_counts:
        ok = [
            r["sessions"]
            for r in rows
            if r["workers"] == workers and not r["failed_sessions"] and (r["overhead_ms"]["p99"] or LIMIT_MS) < LIMIT_MS
        ]
        largest[workers] = max(ok) if ok else None
    flat = [
        {
            "workers": r["workers"],
            "clients pinned apart": "yes" if r["clients_pinned_apart"] else "no",
            "sessions": r["sessions"],
            "failed": r["failed_sessions"],
            "turns": r["turns"],
            "overhead p50": r["overhead_ms"]["p50"],
            "overhead p99": r["overhead_ms"]["p99"],
            "confirm→audio p50": r["confirm_to_audio_ms"]["p50"],
            "confirm→audio p99": r["confirm_to_audio_ms"]["p99"],
            "jitter p50": r["send_jitter_ms"]["p50"],
            "jitter p99": r["send_jitter_ms"]["p99"],
            "server cpu %": round(r["server_cpu_pct_per_session"] * r["sessions"]),
            "cpu %/session": r["server_cpu_pct_per_session"],
            "rss MB": r["server_rss_mb"],
            "rss KB/session": r["server_rss_growth_kb_per_session"],
            "load avg": r["load_average_1min"],
        }
        for r in rows
    ]
    columns = [(k, k) for k in flat[0]] if flat else []
    command = (
        f"presence bench scale{' --quick' if args.quick else ''} --sessions {','.join(map(str, levels))} "
        f"--workers {','.join(map(str, worker_counts))} --turns {turns} --client-procs {args.client_procs}"
        + (" --no-nginx" if args.no_nginx else "")
        + (f" --profile {args.profile}" if args.profile else "")
    )
    where = (
        f"Clients run in {args.client_procs} separate processes, pinned to cores the server does not use "
        f"where this machine ({len(os.sched_getaffinity(0))} cores) leaves one spare; where it does not, they share "
        "the server's cores and their own CPU is inside these numbers."
    )
    path = "directly" if args.no_nginx else "through nginx (deploy/nginx/presence-lb.conf, plain HTTP, one worker)"
    markdown = "\n\n".join(
        [
            "# Scale: concurrent sessions on 1 and 2 worker processes (scripted engine)",
            f"Command: `{command}`. Times in ms; one run, all rows measured together. Sessions connect {path}. "
            f"{where} The levels alternate between the worker counts; load avg is the machine's 1-minute load "
            "average during the level (shared with other jobs). "
            f"CPU is % of one core for all the server's processes; memory (rss) is all of them, "
            "with --workers N the supervisor (which holds the imports, not the sessions) included.",
            table(flat, columns),
            "Largest N with p99 overhead under "
            f"{LIMIT_MS:.0f} ms: "
            + ", ".join(f"**{largest[w]}** with {w} worker{'s' if w > 1 else ''}" for w in worker_counts)
            + ".",
        ]
    )
    profile: list[dict[str, Any]] = []
    if args.profile and not args.quick:
        profile = _profile(flags, args.profile, turns, args.client_procs)
        markdown += "\n\n" + _profile_markdown(profile, args.profile, turns)
    cores = len(os.sched_getaffinity(0))
    busiest = max((r["load_average_1min"] for r in rows), default=0.0)
    if busiest > cores:
        markdown += (
            f"\n\nThe machine was oversubscribed during this run (load average up to {busiest:.0f} on {cores} "
            "cores, from other jobs): where `server cpu %` stays far below 100 per worker while latency "
            "grows, the server was waiting for a core, not busy with its own work. These rows compare 1 "
            "and 2 workers under the same contention; they are not presence's ceiling on an idle machine."
        )
    write_results(
        {"suite": "scale", "levels": rows, "largest_ok": largest, "nginx": not args.no_nginx, "profile": profile},
        markdown,
        args.json,
        Path(args.md) if args.md and not args.quick else None,
    )
    return 0


def _profile(flags: tuple[str, ...], sessions: int, turns: int, procs: int) -> list[dict[str, Any]]:
    """``sessions`` sessions against one worker (directly, no nginx) run under cProfile; the
    functions with the most own time, as shares of everything the event loop's thread did."""
    import pstats
    import tempfile

    out = Path(tempfile.mkstemp(prefix="presence-profile-", suffix=".prof")[1])
    try:
        with presence_process(*flags, env={"PRESENCE_PROFILE_OUT": str(out)}) as server:
            _run_level(f"ws://127.0.0.1:{server.port}/v1/session", sessions, turns, server.pid, procs, None)
        stats = pstats.Stats(str(out))
    finally:
        out.unlink(missing_ok=True)
    entries = stats.stats  # type: ignore[attr-defined]  # {(file, line, name): (cc, nc, tt, ct, callers)}
    total = sum(tt for _, _, tt, _, _ in entries.values()) or 1.0
    top = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:15]
    return [
        {
            "function": f"{Path(file).name}:{line} {name}" if line else name,
            "own %": round(100 * tt / total, 1),
            "with callees %": round(100 * ct / total, 1),
            "calls": nc,
        }
        for (file, line, name), (_, nc, tt, ct, _) in top
    ]


def _profile_markdown(profile: list[dict[str, Any]], sessions: int, turns: int) -> str:
    return "\n\n".join(
        [
            f"## Where one worker's time goes ({sessions} sessions, {turns} turns each, cProfile)",
            "One worker, connected to directly, under cProfile (which slows it, so these rows are not "
            "in the table above): the 15 functions with the most own time, as % of all the time its "
            "event loop's thread spent in Python and in the C functions it called. cProfile charges a "
            "coroutine (e.g. the transport's `run`) with time across its awaits, so read those rows as the "
            "loop waiting, not as work.",
            table(profile, [(k, k) for k in profile[0]]) if profile else "(no profile)",
        ]
    )


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
