"""The reliability suite of issue #12, CI-sized: real ``presence serve`` processes on loopback.

``presence bench soak`` runs the same probes (presence/testing/probes.py) at full size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from presence.testing.probes import documented_close_codes
from presence.testing.servers import ServerProcess, presence_process
from tests.conftest import REPO

#: The scripted engine with a deterministic VAD and a short confirmation, so turns are quick.
SCRIPTED = ("--engine", "scripted", "--vad", "energy", "--confirm-ms", "300")

ServeFactory = Callable[..., contextlib.AbstractContextManager[ServerProcess]]


@pytest.fixture
def serve() -> ServeFactory:
    """``with serve(*flags, nofile=None) as server``: a scripted-engine server process; later flags win."""

    def start(*flags: str, nofile: int | None = None) -> contextlib.AbstractContextManager[ServerProcess]:
        return presence_process(*SCRIPTED, *flags, nofile=nofile, stop_timeout_s=3)

    return start


@pytest.fixture(scope="session")
def shared_server() -> Iterator[ServerProcess]:
    """One server for the probes that leave nothing behind (each waits until its sessions are
    released); at 20 sessions, so that floods and the 200-session burst reach the limit."""
    with presence_process(*SCRIPTED, "--max-sessions", "20", stop_timeout_s=3) as process:
        yield process


@pytest.fixture(scope="session")
def documented_codes() -> frozenset[int]:
    codes = documented_close_codes(REPO / "docs" / "protocol.md")
    assert codes, "docs/protocol.md has no close-code table"
    return codes
