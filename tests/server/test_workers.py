"""`presence serve --workers 2` as an operator runs it: two worker processes on one port,
sessions spread over both by the kernel, a crashed worker replaced, one /metrics that adds
them up, SIGTERM to the supervisor draining every worker and removing the metrics directory;
and workers that cannot start stopping the supervisor with an error."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from presence.client.connection import PresenceClient
from presence.server.drain import RECONNECT_REASON
from presence.testing.servers import free_port
from tests.conftest import REPO, silence, speech_like
from tests.server.test_load_balancing import wait_until


def get_json(url: str) -> dict[str, object]:
    import json

    with urllib.request.urlopen(url, timeout=2) as answer:
        body = json.loads(answer.read())
    assert isinstance(body, dict)
    return body


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples by name from /metrics: [(labels, value)]."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
        text = answer.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


def worker_pids_seen(port: int, want: int, limit_s: float) -> set[int]:
    """Ask /readyz on fresh connections until ``want`` different workers have answered."""
    pids: set[int] = set()

    def enough() -> bool:
        with contextlib.suppress(OSError):  # a worker still starting refuses
            pids.add(int(str(get_json(f"http://127.0.0.1:{port}/readyz")["pid"])))
        return len(pids) >= want

    wait_until(enough, limit_s, f"{want} workers to answer /readyz")
    return pids


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes], Path]]:
    port = free_port()
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(temp), "PYTHONUNBUFFERED": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp_path / "serve.log"
    cmd = [sys.executable, "-m", "presence.cli", "serve", "--engine", "scripted", "--vad", "energy"]
    cmd += ["--port", str(port), "--workers", "2", "--scripted-reply-ms", "400"]
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield port, process, temp
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        print(log.read_text())


async def a_turn(client: PresenceClient) -> None:
    audio = np.concatenate([speech_like(0.4), silence(0.6)])
    for offset in range(0, len(audio), 320):
        await client.send_audio(audio[offset : offset + 320])
        await asyncio.sleep(0.02)
    await client.wait_for_event(lambda e: e.get("type") == "metrics", 15)


@pytest.mark.slow
async def test_two_workers_share_the_port_and_one_metrics_endpoint_adds_them_up(
    two_workers: tuple[int, subprocess.Popen[bytes], Path],
) -> None:
    port, process, temp = two_workers
    first = await asyncio.to_thread(worker_pids_seen, port, 2, 60)
    assert process.pid not in first, "sessions are served by workers, not the supervisor"
    assert next(p.name for p in temp.iterdir()).startswith("presence-metrics-")

    # A worker that crashes is replaced, and the port goes on serving.
    os.kill(min(first), signal.SIGKILL)
    seen: set[int] = set()

    def a_new_worker_answers() -> bool:
        with contextlib.suppress(OSError):
            seen.add(int(str(get_json(f"http://127.0.0.1:{port}/readyz")["pid"])))
        return bool(seen - first)

    await asyncio.to_thread(wait_until, a_new_worker_answers, 60, "a replacement worker")
    pids = (first - {min(first)}) | (seen - first)

    # Open sessions until the kernel has given both workers some (it hashes each connection).
    # Each asks one worker's /v1/token and may land on the other: the workers share the secret.
    url = f"ws://127.0.0.1:{port}/v1/session"
    clients: list[PresenceClient] = []
    per_worker: dict[str, float] = {}
    while len([v for v in per_worker.values() if v > 0]) < 2:
        assert len(clients) < 24, "the kernel put two dozen sessions on one worker"
        client = PresenceClient(url)
        await client.connect()
        clients.append(client)
        per_worker = {labels["pid"]: value for labels, value in scrape(port)["presence_sessions_active"]}
    assert {int(pid) for pid in per_worker} == pids, "one active-sessions series per live worker"
    assert sum(per_worker.values()) == len(clients)

    # A turn on every session: the turn histograms count them all, whichever worker answers.
    await asyncio.gather(*(a_turn(client) for client in clients))
    for _ in range(4):  # several scrapes, on fresh connections, so on either worker
        samples = scrape(port)
        (first_audio,) = [value for _, value in samples["presence_turn_first_audio_seconds_count"]]
        assert first_audio == len(clients)

    # SIGTERM to the supervisor drains every worker: idle sessions get 1001 and the hint.
    process.send_signal(signal.SIGTERM)
    codes = await asyncio.gather(*(client.wait_closed(15) for client in clients))
    assert set(codes) == {1001} and {c.close_reason for c in clients} == {RECONNECT_REASON}
    assert await asyncio.to_thread(process.wait, 20) == 0
    assert not list(temp.iterdir()), "the per-run metrics directory is removed"


def test_workers_that_cannot_start_stop_the_supervisor_with_an_error(tmp_path: Path) -> None:
    with socket.socket() as taken:  # a listener without SO_REUSEPORT: the workers cannot bind
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        cmd = [sys.executable, "-m", "presence.cli", "serve", "--engine", "scripted", "--vad", "energy"]
        done = subprocess.run(
            [*cmd, "--port", str(port), "--workers", "2"], cwd=REPO, env=env, capture_output=True, text=True, timeout=90
        )
    assert done.returncode == 1
    assert "before serving: stopping all" in done.stderr


@pytest.mark.slow
async def test_workers_do_not_outlive_a_killed_supervisor(
    two_workers: tuple[int, subprocess.Popen[bytes], Path],
) -> None:
    port, process, _ = two_workers
    pids = await asyncio.to_thread(worker_pids_seen, port, 2, 60)
    process.kill()  # SIGKILL: the supervisor cannot forward anything
    process.wait(10)

    def workers_gone() -> bool:
        return not any(Path(f"/proc/{pid}").exists() for pid in pids)

    await asyncio.to_thread(wait_until, workers_gone, 30, "the orphaned workers to exit")
