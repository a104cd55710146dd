"""Start a server and wait until it answers, for the benchmarks and the tests; stop it after.

- ``presence_process``: ``presence serve`` as a separate process, as a user would run it. The
  child runs the same ``presence`` package as the caller (its directory goes first on
  ``PYTHONPATH``), so a benchmark or test from a worktree measures that worktree's server.
- ``wait_until_answers`` / ``stop_process``: the same for any HTTP server process (an
  OpenAI-compatible LLM server, a cold start being timed).
- ``serve_in_process`` / ``run_uvicorn``: a presence app (or any ASGI app) on a free port in
  the caller's event loop, for tests and benches that drive it with real sockets.
"""

from __future__ import annotations

import asyncio
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
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

import presence

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from presence.config import Settings
    from presence.engines.base import Engine
    from presence.server.app import Hub, Server

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


class ServerDidNotStart(RuntimeError):
    """The process exited, or did not answer in time; the message carries the end of its log."""


def wait_until_answers(
    url: str, proc: subprocess.Popen[Any], timeout_s: float, log: Callable[[], str], poll_s: float = 0.1
) -> None:
    """Return once ``url`` answers an HTTP GET; raise ``ServerDidNotStart`` with ``log()`` if
    ``proc`` exits first or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise ServerDidNotStart(f"{url} did not answer: {log()[-2000:]}") from None
            time.sleep(poll_s)


def stop_process(proc: subprocess.Popen[Any], timeout_s: float = 10) -> None:
    """SIGTERM, and SIGKILL if that is not enough within ``timeout_s``."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGCONT)  # a paused process cannot act on SIGTERM
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def presence_process(
    *flags: str,
    env: dict[str, str] | None = None,
    startup_s: float = 60,
    stop_timeout_s: float = 10,
    nofile: int | None = None,
    port: int | None = None,
    log: Path | None = None,
) -> Iterator[ServerProcess]:
    """Start a server on a loopback port (free unless given) with ``flags``; stop it on exit.

    ``nofile`` caps the child's open files (RLIMIT_NOFILE), to model an exhausted descriptor
    table with a few hundred sockets instead of thousands. The server's stderr goes to ``log``
    (kept), or to a temporary file (removed)."""
    port = port or free_port()
    path = os.pathsep.join(p for p in (PACKAGE_ROOT, os.environ.get("PYTHONPATH", "")) if p)
    # stderr goes to a file, not a pipe: a server flooded with tracebacks must not block on a
    # pipe nobody reads.
    keep_log = log is not None
    log = log or Path(tempfile.mkstemp(prefix="presence-serve-", suffix=".log")[1])
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
        wait_until_answers(f"{server.http}/healthz", proc, startup_s, server.log_text)
        yield server
    finally:
        stop_process(proc, stop_timeout_s)
        if not keep_log:
            log.unlink(missing_ok=True)


@contextlib.contextmanager
def presence_server(*flags: str, env: dict[str, str] | None = None, startup_s: float = 60) -> Iterator[int]:
    """Start a server on a free loopback port with ``flags``; yields the port."""
    with presence_process(*flags, env=env, startup_s=startup_s) as server:
        yield server.port


# ----------------------------------------------------------------------------- in this process


@dataclass
class RunningServer:
    """A presence app served by ``serve_in_process``: its hub (sessions, metrics) and URLs."""

    app: Starlette
    server: Server
    port: int

    @property
    def hub(self) -> Hub:
        hub: Hub = self.app.state.hub
        return hub

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/session"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def _serve_until_started(server: uvicorn.Server) -> tuple[asyncio.Task[None], int]:
    """Start ``server`` in this loop; its task and port once it listens (or its startup error)."""
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port: int = server.servers[0].sockets[0].getsockname()[1]
    return task, port


@contextlib.asynccontextmanager
async def serve_in_process(settings: Settings, engine: Engine | None = None) -> AsyncIterator[RunningServer]:
    """The app ``presence serve`` would run, on a free loopback port, in this event loop."""
    from presence.server.app import Server, create_app, uvicorn_config

    app = create_app(settings, engine)
    server = Server(uvicorn_config(app, settings, port=0, log_level="warning"), app.state.hub)
    task, port = await _serve_until_started(server)
    try:
        yield RunningServer(app, server, port)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@contextlib.asynccontextmanager
async def run_uvicorn(app: Any) -> AsyncIterator[int]:
    """Any ASGI app (a fake endpoint) on a free loopback port, in this event loop; its port."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    task, port = await _serve_until_started(server)
    try:
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
