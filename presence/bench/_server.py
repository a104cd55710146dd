"""Run ``presence serve`` as a separate process for a benchmark, as a user would.

The child runs the same ``presence`` package as the caller (its directory goes first on
``PYTHONPATH``), so a benchmark or test from a worktree measures that worktree's server.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import presence

PACKAGE_ROOT = str(Path(presence.__file__).resolve().parents[1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class ServerProcess:
    """A running ``presence serve``: its port and process, for probes that watch or pause it."""

    port: int
    proc: subprocess.Popen[str]
    log: Path  # the server's stderr

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/session"

    def rss_bytes(self) -> int:
        """Resident memory now (VmRSS from /proc/PID/status); 0 once the process is gone."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def alive(self) -> bool:
        return self.proc.poll() is None

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)


def _limit_fds(nofile: int | None) -> Callable[[], None] | None:
    if nofile is None:
        return None

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    return apply


@contextlib.contextmanager
def presence_process(
    *flags: str,
    env: dict[str, str] | None = None,
    startup_s: float = 60,
    stop_timeout_s: float = 10,
    nofile: int | None = None,
) -> Iterator[ServerProcess]:
    """Start a server on a free loopback port with ``flags``; SIGKILL it if SIGTERM is not enough.

    ``nofile`` caps the child's open files (RLIMIT_NOFILE), to model an exhausted descriptor
    table with a few hundred sockets instead of thousands."""
    port = free_port()
    path = os.pathsep.join(p for p in (PACKAGE_ROOT, os.environ.get("PYTHONPATH", "")) if p)
    # stderr goes to a file, not a pipe: a server flooded with tracebacks must not block on a
    # pipe nobody reads.
    log = Path(tempfile.mkstemp(prefix="presence-serve-", suffix=".log")[1])
    with log.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "presence", "serve", "--port", str(port), "--log-level", "warning", *flags],
            env={**os.environ, "PYTHONPATH": path, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            text=True,
            preexec_fn=_limit_fds(nofile),
        )
    server = ServerProcess(port, proc, log)
    try:
        deadline = time.monotonic() + startup_s
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"presence serve did not start: {server.log_text()[-2000:]}") from None
                time.sleep(0.1)
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)  # a paused server cannot act on SIGTERM
        proc.terminate()
        try:
            proc.wait(stop_timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.unlink(missing_ok=True)


@contextlib.contextmanager
def presence_server(*flags: str, env: dict[str, str] | None = None, startup_s: float = 60) -> Iterator[int]:
    """Start a server on a free loopback port with ``flags``; yields the port."""
    with presence_process(*flags, env=env, startup_s=startup_s) as server:
        yield server.port
