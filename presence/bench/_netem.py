"""A network emulator on loopback: a TCP proxy that delays, jitters and stalls traffic.

This kernel has no ``netem``, so the emulator works on the byte stream. Each chunk read in
one direction is delivered after ``one-way delay + jitter``, never before the previous chunk
(TCP keeps order). Packet loss cannot be dropped on a byte stream; its effect on TCP is a
head-of-line stall while the segment is retransmitted, so a "lost" chunk holds up its
direction for one retransmission time (one RTT plus 10 ms, as fast retransmit would; a
tail loss waiting for the 200 ms minimum RTO is modelled with probability ``rto_share``).
Reordering below TCP is invisible to the application and is not modelled.

The delivery schedule is a pure function (``DelayLine``) so tests can check it exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    rtt_ms: float = 0.0
    jitter_ms: float = 0.0  # ± around rtt/2, uniform, per direction
    loss: float = 0.0  # probability that a chunk is a "lost" segment
    rto_share: float = 0.2  # of losses, the share that wait for the minimum RTO
    min_rto_ms: float = 200.0


PROFILES: Final = {
    "loopback": Profile("loopback"),
    "wifi": Profile("wifi", rtt_ms=20, jitter_ms=5),
    "4g": Profile("4g", rtt_ms=80, jitter_ms=40, loss=0.02),
}


class DelayLine:
    """Delivery times for one direction: arrival time in, delivery time out (ms)."""

    def __init__(self, profile: Profile, rng: random.Random) -> None:
        self.profile = profile
        self.rng = rng
        self._last_delivery_ms = float("-inf")
        self.stalls = 0

    def delivery_ms(self, arrival_ms: float) -> float:
        p = self.profile
        one_way = p.rtt_ms / 2 + (self.rng.uniform(-p.jitter_ms, p.jitter_ms) if p.jitter_ms else 0.0)
        delivery = arrival_ms + max(0.0, one_way)
        if p.loss and self.rng.random() < p.loss:
            self.stalls += 1
            retransmit = p.min_rto_ms if self.rng.random() < p.rto_share else p.rtt_ms + 10
            delivery += retransmit
        delivery = max(delivery, self._last_delivery_ms)  # in order, as TCP delivers
        self._last_delivery_ms = delivery
        return delivery


class NetworkEmulator:
    """``async with NetworkEmulator(profile, target_port) as port``: connect to ``port`` instead."""

    def __init__(self, profile: Profile, target_host: str, target_port: int, seed: int = 0) -> None:
        self.profile = profile
        self.target = (target_host, target_port)
        self.rng = random.Random(seed)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self.stalls = 0

    async def __aenter__(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await task
        for writer in self._writers:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        await self._server.wait_closed()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        self._writers += [client_writer, server_writer]
        for reader, writer in ((client_reader, server_writer), (server_reader, client_writer)):
            line = DelayLine(self.profile, random.Random(self.rng.random()))
            task = asyncio.create_task(self._pipe(reader, writer, line))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: DelayLine) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                when, data = await queue.get()
                delay = when - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if not data:
                    writer.close()
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.create_task(deliver())
        try:
            while True:
                data = await reader.read(65536)
                when = line.delivery_ms(loop.time() * 1000) / 1000
                await queue.put((when, data))
                if not data:
                    break
            await sender
        except ConnectionError:
            writer.close()  # one side reset the connection (a browser closing): pass it on
        finally:
            self.stalls += line.stalls
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await sender


@contextlib.asynccontextmanager
async def emulated(profile: str | Profile, target_port: int, seed: int = 0) -> AsyncIterator[int]:
    chosen = PROFILES[profile] if isinstance(profile, str) else profile
    async with NetworkEmulator(chosen, "127.0.0.1", target_port, seed) as port:
        yield port


# ---------------------------------------------------------------- UDP (WebRTC)


class DatagramDelayLine:
    """Delivery times for one direction of datagrams: arrival in, delivery out (ms), or None.

    Unlike TCP nothing waits for anything: a lost datagram is simply gone (RTP conceals it, or
    SCTP retransmits it on the reliable channel), and each datagram draws its own jitter, so a
    later one may overtake an earlier one (reordering) when the jitter exceeds their spacing.
    """

    def __init__(self, profile: Profile, rng: random.Random, reorder: bool = True) -> None:
        self.profile = profile
        self.rng = rng
        self.reorder = reorder
        self._last_delivery_ms = float("-inf")
        self.lost = 0
        self.reordered = 0

    def delivery_ms(self, arrival_ms: float) -> float | None:
        p = self.profile
        one_way = p.rtt_ms / 2 + (self.rng.uniform(-p.jitter_ms, p.jitter_ms) if p.jitter_ms else 0.0)
        if p.loss and self.rng.random() < p.loss:
            self.lost += 1
            return None
        delivery = arrival_ms + max(0.0, one_way)
        if delivery < self._last_delivery_ms:
            if not self.reorder:  # a path that keeps order: the datagram waits for the one before
                return self._last_delivery_ms
            self.reordered += 1
        self._last_delivery_ms = max(self._last_delivery_ms, delivery)
        return delivery


class _DelayedTransport:
    """A datagram transport whose ``sendto`` goes through a delay line; the rest is the real one."""

    def __init__(self, inner: asyncio.DatagramTransport, line: DatagramDelayLine) -> None:
        self._inner = inner
        self._line = line
        self._loop = asyncio.get_running_loop()

    def sendto(self, data: bytes, addr: Any = None) -> None:
        when = self._line.delivery_ms(self._loop.time() * 1000)
        if when is not None:
            self._loop.call_at(when / 1000, self._send_now, data, addr)

    def _send_now(self, data: bytes, addr: Any) -> None:
        if not self._inner.is_closing():
            self._inner.sendto(data, addr)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def impair_datagrams(
    protocol: asyncio.DatagramProtocol, profile: Profile, rng: random.Random, reorder: bool = True
) -> None:
    """Put one UDP socket's both directions through delay lines (half the RTT each way).

    For WebRTC there is no proxy to put in the path (ICE picks the addresses), so the bench
    impairs the server's own ICE sockets: what it sends leaves late or never, what it receives
    arrives late or never; the browser sees the same link from the other end.
    """
    loop = asyncio.get_running_loop()
    transport = getattr(protocol, "transport", None)
    if transport is None or isinstance(transport, _DelayedTransport):
        return
    outbound = DatagramDelayLine(profile, random.Random(rng.random()), reorder)
    protocol.transport = _DelayedTransport(transport, outbound)  # type: ignore[attr-defined]
    inbound = DatagramDelayLine(profile, random.Random(rng.random()), reorder)
    received = protocol.datagram_received

    def delayed(data: bytes, addr: Any) -> None:
        when = inbound.delivery_ms(loop.time() * 1000)
        if when is not None:
            loop.call_at(when / 1000, received, data, addr)

    protocol.datagram_received = delayed  # type: ignore[method-assign]


def impair_peer(pc: Any, profile: str, seed: int = 0, reorder: bool = False) -> None:
    """Impair every ICE socket of an aiortc peer connection (after its candidates are gathered).

    In order by default: with datagrams reordered, aiortc's DTLS handshake with Chromium failed
    now and then ("peer connection failed") on this machine; reordering is not measured yet.
    """
    rng = random.Random(seed)
    transports = [t.sender.transport for t in pc.getTransceivers()]
    if pc.sctp is not None:
        transports.append(pc.sctp.transport)
    seen: set[int] = set()
    for dtls in transports:
        connection = getattr(getattr(dtls, "transport", None), "_connection", None)
        for protocol in getattr(connection, "_protocols", []):
            if id(protocol) not in seen:
                seen.add(id(protocol))
                impair_datagrams(protocol, PROFILES[profile], rng, reorder)
