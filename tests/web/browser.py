"""Harness for the real-browser tests: a real `presence serve`, Debian's Chromium, fake-mic WAVs.

Kept out of conftest so the helpers read as plain functions: each test starts what it needs.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from presence.testing import browser as shared
from presence.testing.corpus import RATE, Spoken, compose, speech_bounds, write_wav
from presence.testing.servers import ServerDidNotStart, free_port, presence_process

__all__ = ["RATE", "Server", "Spoken", "chromium", "compose", "presence_server", "speech_bounds", "write_wav"]


def require_chromium() -> None:
    """Browser tests fail (never skip) when Chromium is missing, saying what to install."""
    try:
        shared.require_chromium()
    except shared.BrowserMissing as missing:
        pytest.fail(str(missing))


@dataclass
class Server:
    port: int
    process: subprocess.Popen[str]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


@contextlib.contextmanager
def presence_server(tmp: Path, *extra: str, port: int | None = None) -> Iterator[Server]:
    """`presence serve` in a subprocess on a loopback port (free unless given), its log in `tmp`."""
    port = port or free_port()
    log = tmp / f"server-{port}.log"
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(
                presence_process("--host", "127.0.0.1", *extra, port=port, log=log, startup_s=30)
            )
        except ServerDidNotStart as exc:
            pytest.fail(f"presence serve did not become healthy: {exc}")
        yield Server(server.port, server.proc, log)


@contextlib.contextmanager
def chromium(wav: Path, grant_microphone: bool = True, extra_args: tuple[str, ...] = ()) -> Iterator[Any]:
    require_chromium()
    with shared.chromium(wav, grant_microphone, extra_args) as context:
        yield context
