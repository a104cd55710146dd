"""Drive a ``SessionCore`` with fake time: a client's frames in, the engine's side played by the test.

``Trace`` performs the core's actions the way the asyncio adapter does (in order; an
acknowledged engine call reports back at once, unless the test holds acks to look inside the
window), keeps what would have gone to the wire, and advances a fake clock in 20 ms frames.
Nothing sleeps: a minute of conversation runs in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from presence.audio.pcm import float_to_s16le
from presence.audio.signals import silence, speech_like
from presence.audio.vad import EnergyVad
from presence.engines.base import (
    EngineOutput,
    Interrupt,
    ReplyEnd,
    Transcript,
    TurnEvent,
    TurnEventKind,
)
from presence.engines.scripted import synth_voice
from presence.lipsync.base import EnergyAnimator
from presence.media import AudioChunk
from presence.protocol.frames import AudioIn, AudioOut, Event, Frame
from presence.protocol.hello import AudioFormat, ServerCapabilities, negotiate, parse_client_hello
from presence.session.core import (
    Action,
    Fail,
    InterruptEngine,
    PublishTurn,
    PushAudio,
    Send,
    SessionConfig,
    SessionCore,
    TellEngine,
)
from presence.session.records import TurnRecord
from presence.session.turns import TurnConfig

FRAME = 320  # 20 ms at 16 kHz
OUT_RATE = 24_000
ENGINE_RATE = 16_000

HELLO = {
    "protocol": 1,
    "audio_in": [{"codec": "pcm_s16le", "sample_rate": 16000}],
    "audio_out": [{"codec": "pcm_s16le", "sample_rate": OUT_RATE}],
}


def make_config(reply_timeout_s: float = 2.0, **turns: Any) -> SessionConfig:
    base = {"speculate_ms": 96, "confirm_ms": 320, "yield_window_ms": 0} | turns
    return SessionConfig(output_sample_rate=OUT_RATE, reply_timeout_s=reply_timeout_s, turns=TurnConfig(**base))


@dataclass
class Trace:
    config: SessionConfig = field(default_factory=make_config)
    now: float = 0.0
    hold_acks: bool = False  # keep acknowledgements back (the engine call still running)
    frames: list[tuple[float, Frame]] = field(default_factory=list)
    told: list[TurnEvent] = field(default_factory=list)
    interrupts: list[Interrupt] = field(default_factory=list)
    published: list[TurnRecord] = field(default_factory=list)
    failed: str | None = None
    audio_pushed: int = 0
    pending_acks: list[TurnEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        caps = ServerCapabilities(
            audio_in=(AudioFormat("pcm_s16le", 16000),), audio_out=(AudioFormat("pcm_s16le", OUT_RATE),)
        )
        agreement = negotiate(parse_client_hello(HELLO), caps, "trace", "scripted")
        self.core = SessionCore(agreement, EnergyVad(), lambda: EnergyAnimator(OUT_RATE, 60), self.now, self.config)
        self._sample = 0
        self._seq = 0

    # ----------------------------------------------------------------- the adapter's part

    def run(self, actions: list[Action]) -> None:
        for action in actions:
            match action:
                case Send():
                    self.frames.append((self.now, action.frame))
                case PushAudio():
                    self.audio_pushed += len(action.audio.samples)
                case TellEngine():
                    self.told.append(action.event)
                    if action.ack:
                        if self.hold_acks:
                            self.pending_acks.append(action.event)
                        else:
                            self.run(self.core.on_engine_told(action.event, self.now))
                case InterruptEngine():
                    self.interrupts.append(action.interrupt)
                case PublishTurn():
                    self.published.append(action.record)
                case Fail():
                    self.failed = action.message

    def ack(self) -> None:
        """The engine calls held back return now, in order."""
        pending, self.pending_acks = self.pending_acks, []
        for event in pending:
            self.run(self.core.on_engine_told(event, self.now))

    def settle(self) -> None:
        """What the clock task does on a wake: tick, then send what is ready and paced."""
        self.run(self.core.on_tick(self.now))
        while actions := self.core.take_ready(self.now):
            self.run(actions)

    # ----------------------------------------------------------------- the client's part

    def send_audio(self, audio: np.ndarray) -> None:
        """Stream audio in 20 ms frames, each arriving when it has been spoken."""
        for offset in range(0, len(audio), FRAME):
            chunk = audio[offset : offset + FRAME]
            self._sample += len(chunk)
            self.now = self._sample / 16000
            self.run(
                self.core.on_frame(
                    AudioIn(float_to_s16le(chunk), seq=self._seq, timestamp=self._sample - len(chunk)), self.now
                )
            )
            self._seq += 1
            self.settle()

    def speak(self, seconds: float, seed: int = 0) -> None:
        self.send_audio(speech_like(seconds, seed=seed))

    def quiet(self, seconds: float) -> None:
        self.send_audio(silence(seconds))

    def until(self, condition: Any, limit_s: float = 5.0) -> None:
        """Silence frame by frame until ``condition()`` holds (or fail after ``limit_s``)."""
        start = self.now
        while not condition():
            assert self.now - start < limit_s, "condition not reached"
            self.quiet(0.02)

    # ----------------------------------------------------------------- the engine's part

    def engine(self, *items: EngineOutput) -> None:
        for item in items:
            self.run(self.core.on_engine_output(item, self.now))
        self.settle()

    def reply_audio(self, turn_id: int, ms: int, chunk_ms: int = 20) -> None:
        voice = synth_voice(ms, sample_rate=ENGINE_RATE)
        step = ENGINE_RATE * chunk_ms // 1000
        self.engine(*(AudioChunk(turn_id, voice[i : i + step], ENGINE_RATE) for i in range(0, len(voice), step)))

    def end(self, turn_id: int, reason: str = "done") -> None:
        self.engine(ReplyEnd(turn_id, reason))

    def say(self, turn_id: int, text: str) -> None:
        self.engine(Transcript("agent", text, True, turn_id))

    # ----------------------------------------------------------------- what went out

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [f.body for _, f in self.frames if isinstance(f, Event) and f.body.get("type") == kind]

    def states(self) -> list[str]:
        return [body["state"] for body in self.events("turn")]

    def audio_frames(self, since: float = -1.0) -> list[AudioOut]:
        return [f for at, f in self.frames if isinstance(f, AudioOut) and f.data and at > since]

    def told_kinds(self) -> list[TurnEventKind]:
        return [event.kind for event in self.told]

    def reply_state(self, turn_id: int) -> str | None:
        reply = self.core.replies.get(turn_id)
        return reply.state.value if reply is not None else None
