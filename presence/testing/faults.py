"""Fault injection against a running ``presence serve`` process (issue #12): a server frozen
mid-reply, clients that vanish mid-turn. Same contract as ``_probes``: bounded, self-stopping,
returning a ``Probe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

import numpy as np
import websockets

from presence.audio.pcm import float_to_s16le
from presence.audio.signals import silence
from presence.client.connection import PresenceClient
from presence.protocol.frames import AudioIn, AudioOut, decode, encode
from presence.testing.probes import Probe, good_speech, healthz_ms, no_sessions, wait_until
from presence.testing.servers import ServerProcess
from presence.testing.turns import FRAME_SAMPLES, speak_turn
from presence.testing.wire import HELLO, open_raw


async def pause_mid_reply(
    server: ServerProcess, pause_s: float = 3.0, limit_s: float = 30.0, speech: np.ndarray | None = None
) -> Probe:
    """SIGSTOP the server for ``pause_s`` once the reply's first audio arrived, then SIGCONT.

    Start the server with a reply longer than the pause (``--scripted-reply-ms``)."""
    probe = Probe(
        f"server paused {pause_s:g} s mid-reply",
        "the turn then completes, or ends with an error event; the session is not dropped",
    )
    client = PresenceClient(server.url)
    await client.connect()
    spoken = good_speech() if speech is None else speech
    turn_task = asyncio.create_task(speak_turn(client, spoken, limit_s=limit_s), name="probe-turn")
    # PresenceClient has no audio-arrival event to await: poll its record every 10 ms.
    while not any(frame.data for _, frame in client.received.audio) and not turn_task.done():  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    paused = not turn_task.done()
    if paused:
        server.pause()
        try:
            await asyncio.sleep(pause_s)  # the fault itself: the process is frozen this long
        finally:
            server.resume()
    turn = await turn_task
    errors = client.received.events_of("error")
    closed_by_server = client.close_code
    health = await healthz_ms(server.port, 2.0)
    await client.close()
    probe.passed = paused and (turn.completed or bool(errors)) and closed_by_server is None and health is not None
    probe.measured.update(
        paused_mid_reply=paused,
        turn_completed=turn.completed,
        turn_first_audio_ms=round(turn.first_audio_ms, 1) if turn.first_audio_ms is not None else None,
        turn_error=turn.error,
        error_events=[e.get("code") for e in errors],
        session_closed_by_server=closed_by_server,
        healthz_after_ms=round(health, 1) if health is not None else None,
    )
    return probe


async def drop_mid_turn(
    server: ServerProcess, clients: int = 5, release_s: float = 10.0, speech: np.ndarray | None = None
) -> Probe:
    """Clients reset their TCP connection while the reply streams; the server must release them."""
    probe = Probe(
        f"{clients} clients drop TCP mid-turn",
        f"presence_sessions_active returns to 0 within {release_s:g} s",
    )
    dropped = 0

    async def one(seed: int) -> None:
        nonlocal dropped
        ws = await open_raw(server.url)
        await ws.send(HELLO)
        await asyncio.wait_for(ws.recv(), 5)
        spoken = good_speech(seed) if speech is None else speech
        loop = asyncio.get_running_loop()
        start = loop.time()
        replying = False

        async def read() -> None:
            nonlocal replying
            async for message in ws:
                if isinstance(message, bytes):
                    frame = decode(message)
                    if isinstance(frame, AudioOut) and frame.data:
                        replying = True
                        return

        reader = asyncio.create_task(read(), name="probe-drop-reader")
        i = 0
        while not replying and loop.time() - start < 10:
            offset = i * FRAME_SAMPLES
            chunk = spoken[offset : offset + FRAME_SAMPLES] if offset < len(spoken) else silence(0.02)
            await ws.send(encode(AudioIn(float_to_s16le(chunk), seq=i, timestamp=offset)))
            i += 1
            await asyncio.sleep(max(0.0, start + i * 0.02 - loop.time()))
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
            await reader
        if replying:
            sock = ws.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
            ws.transport.abort()
            dropped += 1
        else:
            await ws.close()

    await asyncio.gather(*(one(seed) for seed in range(clients)))
    released = await wait_until(lambda: no_sessions(server), release_s)
    probe.passed = dropped == clients and released is not None
    probe.measured.update(dropped_mid_reply=dropped, released_s=round(released, 2) if released is not None else None)
    return probe
