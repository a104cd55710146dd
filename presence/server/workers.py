"""``presence serve --workers N``: N worker processes on one port, and their supervisor.

Each worker is a whole server (its own event loop, engine, models and admission limits); a
session lives in one worker for its whole life, so workers share nothing but the port and
the metrics directory.

Why one SO_REUSEPORT socket per worker rather than one socket bound by the parent and
inherited by all (uvicorn's and gunicorn's way): with a shared socket every idle worker wakes
for each connection and the first to win the race takes it, so under epoll one worker tends
to take most sessions; with SO_REUSEPORT the kernel hashes each connection to one worker's
own socket, so sessions spread evenly and no worker needs the parent's descriptor. Linux
only, which is where this server is deployed.

The supervisor forwards SIGTERM/SIGINT to every worker (each drains, app.Server), restarts a
worker that exits on its own after it was serving (a worker signalled alone restarts
drained), and gives up, stopping all, when one exits before it served (a configuration,
port or model error would repeat forever); a worker reports that it serves from uvicorn's
first main-loop tick. It owns a per-run PROMETHEUS_MULTIPROC_DIR (removed at exit) unless
the operator set one.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import tempfile
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from pathlib import Path
from types import FrameType

from presence.config import Settings

log = logging.getLogger(__name__)

METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A socket bound where sibling workers bind too, not yet listening: the kernel gives a
    socket connections only once it listens, which uvicorn does after the app's startup (the
    models loaded), so no connection waits in the backlog of a worker still starting."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(False)
    return sock


def follow_parent(parent_pid: int) -> None:
    """SIGTERM this process when the supervisor dies, even by SIGKILL (Linux prctl
    PR_SET_PDEATHSIG): orphaned workers would go on serving the port with nobody to stop them."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.warning("worker cannot follow its supervisor (prctl errno %d)", ctypes.get_errno())
    if os.getppid() != parent_pid:  # the supervisor died before the prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def run_worker(settings: Settings, index: int, serving: Event, parent_pid: int) -> None:
    """One worker process: the same server as ``presence serve``, on its own reuse-port socket;
    sets ``serving`` once it is up."""
    follow_parent(parent_pid)
    listener = reuse_port_socket(settings.host, settings.port)  # a taken port fails before the imports
    from presence.server.app import Server, create_app, uvicorn_config
    from presence.server.logs import guard_server_logs

    logging.basicConfig(
        level=settings.log_level.upper(),
        format=f"%(asctime)s %(levelname)s worker-{index} %(name)s: %(message)s",
    )
    app = create_app(settings)

    async def notify() -> None:
        serving.set()

    # uvicorn calls this on its first main-loop tick, after startup (then hourly).
    config = uvicorn_config(app, settings, callback_notify=notify, timeout_notify=3600)
    guard_server_logs()
    server = Server(config, app.state.hub, settings.drain_timeout_s)
    server.run(sockets=[listener])


class Supervisor:
    """Starts, watches and stops the workers; see the module docstring for the policy."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.context = multiprocessing.get_context("spawn")  # no fork after threads or models
        self.workers: dict[int, tuple[BaseProcess, Event]] = {}
        self.stopping = False
        self.signals = 0
        self.failed = False

    def run(self) -> int:
        from presence.server.app import WORKERS_SECRET_ENV

        own_dir = METRICS_DIR_ENV not in os.environ
        metrics_dir = Path(os.environ.get(METRICS_DIR_ENV) or tempfile.mkdtemp(prefix="presence-metrics-"))
        for stale in metrics_dir.glob("*.db"):
            stale.unlink()  # series of an earlier run would be summed into this one's
        os.environ[METRICS_DIR_ENV] = str(metrics_dir)
        os.environ.setdefault(WORKERS_SECRET_ENV, os.urandom(32).hex())
        wake_r, wake_w = socket.socketpair()
        wake_w.setblocking(False)
        previous_wakeup = signal.set_wakeup_fd(wake_w.fileno())
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for index in range(self.settings.workers):
                self._start(index)
            self._watch(wake_r)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_wakeup)
            wake_r.close()
            wake_w.close()
            self._stop_all()
            if own_dir:
                shutil.rmtree(metrics_dir, ignore_errors=True)
                del os.environ[METRICS_DIR_ENV]
        return 1 if self.failed else 0

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        self.signals += 1
        self.stopping = True

    def _start(self, index: int) -> None:
        serving = self.context.Event()
        process = self.context.Process(
            target=run_worker, args=(self.settings, index, serving, os.getpid()), name=f"presence-worker-{index}"
        )
        process.start()
        self.workers[index] = (process, serving)
        log.info("worker %d started (pid %s)", index, process.pid)

    def _watch(self, wake: socket.socket) -> None:
        forwarded = 0
        while self.workers:
            if self.signals > forwarded:
                forwarded = self.signals  # a second signal reaches the workers too: no more draining
                for process, _ in self.workers.values():
                    self._signal(process, signal.SIGTERM)
            sentinels = [process.sentinel for process, _ in self.workers.values()]
            ready = multiprocessing.connection.wait([*sentinels, wake])
            if wake in ready:
                with contextlib.suppress(BlockingIOError):
                    wake.recv(64)
            for index, (process, serving) in list(self.workers.items()):
                if process.is_alive():
                    continue
                process.join()
                self._forget(index, process)
                if self.stopping:
                    continue
                if not serving.is_set():
                    log.error("worker %d exited with %s before serving: stopping all", index, process.exitcode)
                    self.failed = self.stopping = True
                    self.signals += 1
                else:
                    log.warning("worker %d exited with %s: restarting it", index, process.exitcode)
                    self._start(index)

    def _forget(self, index: int, process: BaseProcess) -> None:
        from prometheus_client import multiprocess

        del self.workers[index]
        if process.pid is not None:
            multiprocess.mark_process_dead(process.pid)  # type: ignore[no-untyped-call]

    @staticmethod
    def _signal(process: BaseProcess, sig: int) -> None:
        if process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, sig)

    def _stop_all(self) -> None:
        """Only on the way out after an error: nothing may outlive the supervisor."""
        for process, _ in self.workers.values():
            self._signal(process, signal.SIGTERM)
        for index, (process, _) in list(self.workers.items()):
            process.join(self.settings.drain_timeout_s + 5)
            if process.is_alive():
                process.kill()
                process.join()
            self._forget(index, process)
