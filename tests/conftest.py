"""Shared fixtures: a real presence server on a loopback port, and signal makers."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from presence.audio.signals import silence, speech_like
from presence.config import Settings
from presence.engines.base import Engine
from presence.server.app import Hub, Server, create_app, uvicorn_config

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("PRESENCE_DATA_DIR", REPO / ".." / "shared" / "data")).resolve()


#: A directory's tests carry its marker, so a kind of test can be chosen with ``-m``.
DIRECTORY_MARKERS = {
    "bench": "bench",
    "web": "browser",
    "reliability": "reliability",
    "local": "local_models",
    "session": "integration",
    "server": "integration",
    "client": "integration",
    "gemini": "integration",
    "openai_rt": "integration",
}
#: Single files that belong with a heavier kind than their directory's.
FILE_MARKERS = {"lipsync/test_cloud_lipsync.py": "integration"}  # real sessions against the service fakes
#: What ``unit`` excludes: the tests that start browsers, models, benches, servers or take seconds.
NOT_UNIT = frozenset({"browser", "bench", "integration", "local_models", "reliability", "slow"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark by directory, then mark ``unit`` whatever none of the heavier markers claims
    (``make check`` runs ``-m unit``; ``make test`` runs everything)."""
    for item in items:
        parts = Path(str(item.path)).relative_to(REPO / "tests").parts
        for marker in (DIRECTORY_MARKERS.get(parts[0]) if len(parts) > 1 else None, FILE_MARKERS.get("/".join(parts))):
            if marker is not None:
                item.add_marker(marker)
        if not any(item.get_closest_marker(name) for name in NOT_UNIT):
            item.add_marker("unit")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def timit_dir() -> Path:
    path = DATA_DIR / "timit-sample"
    if not path.is_dir():
        pytest.fail(f"evaluation data missing: expected {path} (set PRESENCE_DATA_DIR)")
    return path


@dataclass
class RunningServer:
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


@contextlib.asynccontextmanager
async def run_server(settings: Settings, engine: Engine | None = None) -> AsyncIterator[RunningServer]:
    app = create_app(settings, engine)
    config = uvicorn_config(app, settings, port=0, log_level="warning")
    server = Server(config, app.state.hub)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield RunningServer(app, server, port)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@contextlib.asynccontextmanager
async def run_uvicorn(app: Any) -> AsyncIterator[int]:
    """Any ASGI app (a fake endpoint) on a free loopback port, in this event loop."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


ServerFactory = Callable[..., contextlib.AbstractAsyncContextManager[RunningServer]]


@pytest.fixture
def server_factory() -> ServerFactory:
    """``async with server_factory(**settings) as srv``: a scripted-engine server on a free port."""

    def factory(
        engine: Engine | None = None, **overrides: Any
    ) -> contextlib.AbstractAsyncContextManager[RunningServer]:
        values: dict[str, Any] = {"engine": "scripted", "vad": "energy", "log_level": "warning"}
        values.update(overrides)
        return run_server(Settings(**values), engine)

    return factory


__all__ = ["DATA_DIR", "REPO", "RunningServer", "ServerFactory", "run_server", "run_uvicorn", "silence", "speech_like"]
