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


# ---------------------------------------------------------------- UDP (WebRTC)


def test_datagrams_are_lost_and_reordered_but_never_held_back() -> None:
    from presence.bench._netem import DatagramDelayLine

    line = DatagramDelayLine(PROFILES["4g"], random.Random(3))
    sent = [t * 20.0 for t in range(2000)]  # 20 ms RTP packets
    delivered = [(t, line.delivery_ms(t)) for t in sent]
    kept = [(t, d) for t, d in delivered if d is not None]
    assert 0.01 < line.lost / len(sent) < 0.03, "2 % lost, dropped rather than stalled"
    delays = [d - t for t, d in kept]
    assert min(delays) >= 0 and max(delays) <= 80 + 1e-9, "one way: 40 ms ± 40 ms, nothing waits for a loss"
    order = [d for _, d in kept]
    assert line.reordered > 100 and any(b < a for a, b in itertools.pairwise(order)), "jitter reorders"
    assert DatagramDelayLine(Profile("x", rtt_ms=40), random.Random(1)).delivery_ms(5) == 25


async def test_an_impaired_udp_socket_delays_both_directions_by_half_the_rtt() -> None:
    from presence.bench._netem import impair_datagrams

    loop = asyncio.get_running_loop()
    arrivals: asyncio.Queue[tuple[bytes, float]] = asyncio.Queue()

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.transport.sendto(data, addr)  # type: ignore[attr-defined]

    class Sink(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            arrivals.put_nowait((data, loop.time()))

    echo_transport, echo = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    sink_transport, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    try:
        impair_datagrams(echo, Profile("x", rtt_ms=60), random.Random(0))
        sent_at = loop.time()
        sink_transport.sendto(b"ping", echo_transport.get_extra_info("sockname"))
        data, at = await asyncio.wait_for(arrivals.get(), 5)
        assert data == b"ping"
        assert at - sent_at >= 0.06 - 0.002, "30 ms in, 30 ms out"
    finally:
        echo_transport.close()
        sink_transport.close()


def test_an_in_order_datagram_path_still_loses_but_never_reorders() -> None:
    from presence.bench._netem import DatagramDelayLine

    line = DatagramDelayLine(PROFILES["4g"], random.Random(3), reorder=False)
    kept = [d for d in (line.delivery_ms(t * 20.0) for t in range(2000)) if d is not None]
    assert line.lost > 0 and line.reordered == 0
    assert all(b >= a for a, b in itertools.pairwise(kept))
