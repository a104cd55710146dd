"""The network emulator: exact delivery schedules, and a real session through it."""

from __future__ import annotations

import asyncio
import itertools
import random
import time

import numpy as np

from presence.bench._netem import PROFILES, DelayLine, Profile, emulated
from presence.client.connection import PresenceClient
from tests.conftest import ServerFactory, silence, speech_like


def test_delivery_keeps_order_and_adds_half_the_rtt() -> None:
    line = DelayLine(Profile("x", rtt_ms=40), random.Random(1))
    assert [line.delivery_ms(t) for t in (0, 5, 10)] == [20, 25, 30]


def test_jitter_stays_within_its_bounds_and_never_reorders() -> None:
    line = DelayLine(PROFILES["wifi"], random.Random(2))
    times = [line.delivery_ms(t * 20.0) for t in range(1000)]
    delays = [d - t * 20.0 for t, d in enumerate(times)]
    assert all(b >= a for a, b in itertools.pairwise(times))
    assert min(delays) >= 5 - 1e-9 and max(delays) <= 15 + 1e-9


def test_loss_shows_up_as_head_of_line_stalls() -> None:
    line = DelayLine(PROFILES["4g"], random.Random(3))
    times = [line.delivery_ms(t * 20.0) for t in range(5000)]
    assert 50 < line.stalls < 150  # 2 % of 5000
    gaps = np.diff(times)
    assert gaps.max() >= 90, "a retransmission holds up what follows"


async def test_a_session_works_through_the_bad_4g_profile(server_factory: ServerFactory) -> None:
    async with server_factory() as srv, emulated("4g", srv.port, seed=4) as port:
        client = PresenceClient(f"ws://127.0.0.1:{port}/v1/session")
        start = time.monotonic()
        await client.connect()
        assert time.monotonic() - start >= 0.08, "the handshake paid the emulated round trips"
        audio = np.concatenate([speech_like(0.5), silence(0.8)])
        for offset in range(0, len(audio), 320):
            await client.send_audio(audio[offset : offset + 320])
            await asyncio.sleep(0.02)
        await client.wait_for_event(lambda b: b.get("type") == "metrics", 10)
        assert client.received.audio
        await client.close()
