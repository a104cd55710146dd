"""Harness for the real-browser tests: a real `presence serve`, Debian's Chromium, fake-mic WAVs.

Kept out of conftest so the helpers read as plain functions: each test starts what it needs.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from presence.bench import _browser as shared
from presence.bench._browser import RATE, Utterance, compose, speech_bounds, write_wav
from presence.bench._server import free_port

__all__ = ["RATE", "Server", "Utterance", "chromium", "compose", "presence_server", "speech_bounds", "write_wav"]

REPO = Path(__file__).resolve().parents[2]


def require_chromium() -> None:
    """Browser tests fail (never skip) when Chromium is missing, saying what to install."""
    try:
        shared.require_chromium()
    except shared.BrowserMissing as missing:
        pytest.fail(str(missing))


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


@contextlib.contextmanager
def presence_server(tmp: Path, *extra: str, port: int | None = None) -> Iterator[Server]:
    """`presence serve` in a subprocess on a loopback port (free unless given); stopped on exit."""
    port = port or free_port()
    log = tmp / f"server-{port}.log"
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_PROXY": "127.0.0.1,localhost"}
    cmd = [sys.executable, "-m", "presence.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--log-level", "warning", *extra]
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"presence serve exited with {process.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"presence serve did not become healthy:\n{log.read_text()}")
            time.sleep(0.1)
        yield Server(port, process, log)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def chromium(wav: Path, grant_microphone: bool = True, extra_args: tuple[str, ...] = ()) -> Iterator[Any]:
    require_chromium()
    with shared.chromium(wav, grant_microphone, extra_args) as context:
        yield context
