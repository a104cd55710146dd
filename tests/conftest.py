"""Shared fixtures: a real presence server on a loopback port, and signal makers."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from presence.audio.signals import silence, speech_like
from presence.config import Settings
from presence.engines.base import Engine
from presence.testing.corpus import DATA_DIR as CORPUS_DATA_DIR
from presence.testing.servers import RunningServer, run_uvicorn, serve_in_process

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = CORPUS_DATA_DIR.resolve()


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
FILE_MARKERS = {  # real sessions against the service fakes
    "lipsync/test_cloud_lipsync.py": "integration",
    "engines/test_cloud_services.py": "integration",
    "deploy/test_container.py": "integration",  # runs the image's entry point: servers on loopback
}
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


ServerFactory = Callable[..., contextlib.AbstractAsyncContextManager[RunningServer]]


@pytest.fixture
def server_factory() -> ServerFactory:
    """``async with server_factory(**settings) as srv``: a scripted-engine server on a free port."""

    def factory(
        engine: Engine | None = None, **overrides: Any
    ) -> contextlib.AbstractAsyncContextManager[RunningServer]:
        values: dict[str, Any] = {"engine": "scripted", "vad": "energy", "log_level": "warning"}
        values.update(overrides)
        return serve_in_process(Settings(**values), engine)

    return factory


__all__ = [
    "DATA_DIR",
    "REPO",
    "RunningServer",
    "ServerFactory",
    "run_uvicorn",
    "serve_in_process",
    "silence",
    "speech_like",
]
