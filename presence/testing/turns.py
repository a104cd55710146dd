"""One conversational turn from the Python client, as a microphone would send it.

Speech is streamed in 20 ms frames in real time, then silence, until the server's ``metrics``
record for a new turn arrives: the user keeps the microphone open while the agent answers.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np
import websockets

from presence.client.connection import PresenceClient

FRAME_SAMPLES = 320  # 20 ms at 16 kHz
FRAME_S = 0.02


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    """What one turn gave the client. ``first_audio_ms``: confirming frame sent → first reply audio
    frame received (client clock); None when the turn got no record or no audio."""

    record: dict[str, Any] | None
    first_audio_ms: float | None
    server_ms: float | None  # the server's own view: reply releasable → first audio frame sent
    confirmed_at: float | None  # monotonic time the confirming frame was sent
    error: str | None

    @property
    def completed(self) -> bool:
        return self.record is not None and self.first_audio_ms is not None and not self.error


async def speak_turn(client: PresenceClient, speech: np.ndarray, limit_s: float = 15.0) -> TurnOutcome:
    """Speak ``speech`` (16 kHz float32) and keep streaming silence until the turn's record arrives."""
    known = {body.get("turn_id") for body in client.received.events_of("metrics")}
    seen = 0  # events already looked at: a long session must not rescan them every frame
    loop = asyncio.get_running_loop()
    start = loop.time()
    silence = np.zeros(FRAME_SAMPLES, dtype=np.float32)
    index = 0
    record: dict[str, Any] | None = None
    try:
        while record is None:
            offset = index * FRAME_SAMPLES
            if offset < len(speech):
                chunk = speech[offset : offset + FRAME_SAMPLES]
            elif loop.time() - start > limit_s + len(speech) / 16_000:
                return TurnOutcome(None, None, None, None, "no turn record within the limit")
            else:
                chunk = silence
            delay = start + index * FRAME_S - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await client.send_audio(chunk)
            index += 1
            events = client.received.events
            record = next(
                (
                    body
                    for _, body in events[seen:]
                    if body.get("type") == "metrics" and body.get("turn_id") not in known
                ),
                None,
            )
            seen = len(events)
    except websockets.ConnectionClosed as exc:
        return TurnOutcome(
            None, None, None, None, f"session closed ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
        )
    return _outcome(client, record)


def _outcome(client: PresenceClient, record: dict[str, Any]) -> TurnOutcome:
    confirmed = record.get("turn_confirmed_sample")
    # The confirming VAD window ends before `confirmed`: its last sample is confirmed - 1.
    sent = client.sent_time_of(confirmed - 1) if confirmed is not None else None
    start = record.get("reply_start_sample")
    first = None
    if start is not None:
        first = next((at for at, frame in client.received.audio if frame.timestamp >= start and frame.data), None)
    latency = (first - sent) * 1000 if first is not None and sent is not None else None
    server = None
    if record.get("first_audio_sent_ms") is not None and record.get("turn_confirmed_ms") is not None:
        release = max(record["turn_confirmed_ms"], record.get("engine_first_audio_ms") or 0.0)
        server = record["first_audio_sent_ms"] - release
    return TurnOutcome(record, latency, server, sent, record.get("error"))
