"""A live microphone for a benchmark: 20 ms frames in real time, the speaker's background noise
between sentences, and per turn the time from the last speech frame to the first reply audio
and the reply audio's arrival jitter."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from presence.audio.pcm import Float32
from presence.bench._pipecat_wires import Wire
from presence.engines.scripted import SAMPLE_RATE as REPLY_RATE
from presence.testing.corpus import Utterance

INPUT_RATE = 16_000
FRAME = 320  # 20 ms of input
LEAD_S = 0.4  # background noise before each sentence
SETTLE_S = 0.5  # quiet after a reply has played out before the next turn starts
REPLY_LIMIT_S = 10.0  # a turn with no reply by then counts as unanswered


@dataclass(frozen=True, slots=True)
class TurnAudio:
    """A sentence after a little of its speaker's background noise; it ends where speech ends."""

    speech: Float32
    noise_rms: float


@dataclass(slots=True)
class TurnResult:
    answered: bool
    cut_in: bool  # reply audio arrived before the user had finished speaking
    first_audio_ms: float | None  # last speech frame sent → first reply byte received
    gaps_ms: list[float] = field(default_factory=list)  # between reply audio messages
    lateness_ms: float | None = None  # worst chunk lateness against playout from the first byte
    chunk_ms: float | None = None  # median reply audio message duration
    endpoint_ms: float | None = None  # last speech frame sent → frame that ended the turn sent
    decided_to_audio_ms: float | None = None  # frame that ended the turn sent → first reply byte


def make_turn(utterance: Utterance, rng: np.random.Generator) -> TurnAudio:
    lead = (utterance.noise_rms * rng.standard_normal(int(LEAD_S * INPUT_RATE))).astype(np.float32)
    audio = np.concatenate([lead, utterance.audio]).astype(np.float32)
    return TurnAudio(audio, utterance.noise_rms)


def reply_stats(arrivals: Sequence[tuple[float, int]]) -> tuple[list[float], float, float]:
    """Gaps between messages (ms), worst lateness against real-time playout (ms), median chunk (ms)."""
    times = np.array([at for at, _ in arrivals])
    sizes = np.array([n for _, n in arrivals], dtype=np.float64)
    due = times[0] + np.concatenate([[0.0], np.cumsum(sizes)[:-1]]) / REPLY_RATE
    gaps = list(np.diff(times) * 1000)
    return gaps, float(np.max(times - due) * 1000), float(np.median(sizes) / REPLY_RATE * 1000)


class Microphone:
    """A live microphone on one connection: 20 ms frames in real time, for the whole run.

    It sends what it is told to say, and background noise the rest of the time, so each server
    always hears a continuous stream — also while the benchmark is serving the other one
    (both frameworks keep time from the audio they receive: a silent gap is not a pause to them).
    """

    def __init__(self, wire: Wire, noise_rms: float, rng: np.random.Generator) -> None:
        self.wire = wire
        self.noise_rms = noise_rms
        self.rng = rng
        self._queue: list[tuple[Float32, asyncio.Future[float]]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="microphone")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def say(self, audio: Float32, noise_rms: float) -> asyncio.Future[float]:
        """Queue ``audio``; the future gives the monotonic time its last frame was sent."""
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._queue.append((audio, done))
        self.noise_rms = noise_rms
        return done

    def _noise(self, n: int) -> Float32:
        return (self.noise_rms * self.rng.standard_normal(n)).astype(np.float32)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = 0
        current: tuple[Float32, asyncio.Future[float]] | None = None
        offset = 0
        while True:
            if current is None and self._queue:
                current, offset = self._queue.pop(0), 0
            if current is None:
                chunk = self._noise(FRAME)
            else:
                chunk = current[0][offset : offset + FRAME]
                if len(chunk) < FRAME:
                    chunk = np.concatenate([chunk, self._noise(FRAME - len(chunk))]).astype(np.float32)
                offset += FRAME
            delay = start + sent * FRAME / INPUT_RATE - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.wire.send(chunk)
            sent += 1
            if current is not None and offset >= len(current[0]):
                current[1].set_result(time.monotonic())
                current = None


async def run_turn(mic: Microphone, turn: TurnAudio, reply_s: float) -> TurnResult:
    """Say one sentence; wait until its reply has played out (or never came)."""
    wire = mic.wire
    seen = len(wire.arrivals())
    ends_seen = len(wire.turn_ends())
    end_sent = await mic.say(turn.speech, turn.noise_rms)
    while True:
        await asyncio.sleep(FRAME / INPUT_RATE)
        now = time.monotonic()
        reply = wire.arrivals()[seen:]
        after = [a for a in reply if a[0] >= end_sent]
        if after and now >= after[0][0] + reply_s + SETTLE_S and now >= reply[-1][0] + SETTLE_S:
            break
        if now - end_sent > REPLY_LIMIT_S:
            break
    cut_in = bool(reply) and reply[0][0] < end_sent
    if not after:
        return TurnResult(False, cut_in, None)
    first_ms = (after[0][0] - end_sent) * 1000
    gaps, lateness, chunk_ms = reply_stats(after)
    result = TurnResult(True, cut_in, first_ms, gaps, lateness, chunk_ms)
    ends = wire.turn_ends()[ends_seen:]
    # The turn-ending window's last sample is ends[-1] - 1; its frame's send time is the decision.
    decided = wire.sent_time_of(ends[-1] - 1) if ends else None
    if decided is not None:
        result.endpoint_ms = (decided - end_sent) * 1000
        result.decided_to_audio_ms = (after[0][0] - decided) * 1000
    return result
