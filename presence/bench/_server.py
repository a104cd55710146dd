"""Run ``presence serve`` as a separate process for a benchmark, as a user would."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def presence_server(*flags: str, env: dict[str, str] | None = None, startup_s: float = 60) -> Iterator[int]:
    """Start a server on a free loopback port with ``flags``; yields the port."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "presence", "serve", "--port", str(port), "--log-level", "warning", *flags],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + startup_s
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"presence serve did not start: {proc.stderr.read() if proc.stderr else ''}"
                    ) from None
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
