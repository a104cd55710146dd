"""Exhaustion probes over real sockets on loopback (issue #12), CI-sized.

Each probe is bounded in count and time and stops by itself (presence/testing/probes.py);
``presence bench soak`` runs them at the issue's sizes. A probe's ``measured`` dict is the
assertion message, so a failure says what happened.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import numpy as np
import pytest

from presence.bench.soak import load_utterances
from presence.testing import probes as probes
from presence.testing.servers import ServerProcess
from tests.reliability.conftest import ServeFactory

pytestmark = pytest.mark.reliability


async def test_a_real_user_gets_a_session_while_sockets_that_never_say_hello_fill_the_server(
    shared_server: ServerProcess,
) -> None:
    probe = await probes.pre_hello_flood(shared_server, sockets=30)
    assert probe.passed, probe.summary()


async def test_healthz_answers_while_slowloris_connections_exhaust_the_descriptor_table(serve: ServeFactory) -> None:
    # 300 partial-header connections against 256 descriptors: the 1100 against 1024, scaled down.
    with serve(nofile=256) as server:
        probe = await probes.slowloris(server, sockets=300, hold_s=2)
    assert probe.passed, probe.summary()


async def test_a_ping_flood_from_a_client_that_never_reads_keeps_server_memory_bounded(serve: ServeFactory) -> None:
    with serve() as server:
        probe = await probes.ping_flood(server, megabytes=40, limit_s=5, bound_mb=24)
    assert probe.passed, probe.summary()


def _exits_within(proc: subprocess.Popen[str], limit_s: float) -> bool:
    try:
        proc.wait(limit_s)
    except subprocess.TimeoutExpired:
        return False
    return True


@pytest.fixture
def real_speech(timit_dir: Path) -> np.ndarray:
    """One TIMIT sentence: Silero, unlike the energy detector, does not take synthetic tones for speech."""
    return load_utterances(timit_dir, limit=1)[0]


async def test_one_audio_frame_stamped_2_to_the_62_neither_stalls_the_server_nor_goes_unanswered(
    serve: ServeFactory, real_speech: np.ndarray
) -> None:
    # Silero is the server's default detector; the gap it would be asked to score is the attack.
    with serve("--vad", "silero") as server:
        probe = await probes.timestamp_attack(server, "far", watch_s=5, speech=real_speech)
        server.proc.terminate()
        exited = await asyncio.to_thread(_exits_within, server.proc, 5.0)
    assert probe.passed, probe.summary()
    assert exited, "after the attack the server ignored SIGTERM (the issue needed SIGKILL)"


async def test_ten_second_timestamp_jumps_at_100_frames_a_second_neither_stall_the_server_nor_go_unanswered(
    serve: ServeFactory, real_speech: np.ndarray
) -> None:
    with serve("--vad", "silero") as server:
        probe = await probes.timestamp_attack(server, "jumps", frames=200, watch_s=5, speech=real_speech)
    assert probe.passed, probe.summary()


async def test_200_sessions_at_once_are_each_accepted_or_refused_with_1013_and_all_released(
    shared_server: ServerProcess,
) -> None:
    probe = await probes.many_sessions(shared_server, sessions=200)
    assert probe.passed, probe.summary()
    assert set(probe.measured["outcomes"]) == {"accepted", "closed 1013"}, "both paths were exercised"
