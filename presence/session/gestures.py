"""Listening and thinking feedback: the avatar looks alive before the reply's first word.

Pure and clock-free: the session feeds turn transitions and the input-timeline time
(``t_samples``, 16 kHz), and forwards the returned ``GestureEvent``s to the client. Three
sources:
- a listening nod when the user pauses after a phrase long enough to acknowledge (rate
  limited, so a halting speaker does not make the avatar bob);
- a ``thinking`` cue when a confirmed turn's reply has not started after ``thinking_after_ms``;
- blinks at randomised intervals (an injected ``random.Random``; seed it for reproducible runs).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from presence.media import INPUT_SAMPLE_RATE
from presence.protocol.events import GestureBody
from presence.session.turns import Signal, Transition

MS = INPUT_SAMPLE_RATE // 1000  # samples per millisecond on the input timeline


@dataclass(frozen=True, slots=True)
class GestureEvent:
    """A gesture starting at ``t_samples`` (input timeline) lasting ``duration_ms``."""

    name: str  # "nod", "thinking", "blink"
    t_samples: int
    duration_ms: int
    intensity: float = 1.0
    turn_id: int | None = None

    def to_json(self) -> GestureBody:
        """The ``gesture`` event body (docs/protocol.md): listening cues play now (``at`` null);
        ``t_samples`` is the input timeline, which the client does not share, so it stays here."""
        body: GestureBody = {
            "type": "gesture",
            "name": self.name,
            "at": None,
            "turn_id": self.turn_id,
            "intensity": round(self.intensity, 3),
            "duration_ms": self.duration_ms,
        }
        return body


@dataclass(frozen=True, slots=True)
class GestureConfig:
    nod_min_phrase_ms: int = 700  # speech before a pause must last this long to earn a nod
    nod_min_gap_ms: int = 2500  # at most one nod per this interval
    nod_ms: int = 450
    thinking_after_ms: int = 600  # confirmed turn, no reply audio yet, for this long
    thinking_ms: int = 1200
    blink_mean_gap_ms: int = 3500  # people blink every 2–6 s at rest
    blink_min_gap_ms: int = 1200
    blink_ms: int = 150
    blink_double_p: float = 0.12  # a second blink right after the first, now and then


class Gestures:
    """Turns and time in, gesture events out. One per session."""

    def __init__(self, rng: random.Random, config: GestureConfig | None = None, t_samples: int = 0) -> None:
        self.config = config or GestureConfig()
        self.rng = rng
        self._phrase_start: int | None = None
        self._last_nod: int | None = None
        self._waiting_since: int | None = None  # confirmed, reply audio not yet started
        self._waiting_turn: int | None = None
        self._next_blink = t_samples + self._blink_gap()

    def on_transitions(self, transitions: list[Transition]) -> list[GestureEvent]:
        out: list[GestureEvent] = []
        c = self.config
        for tr in transitions:
            match tr.signal:
                case Signal.SPEECH | Signal.SPEECH_RESUMED | Signal.BARGE_IN | Signal.USER_RESUMED:
                    self._phrase_start = tr.t_samples
                    self._waiting_since = None
                case Signal.SILENCE if self._phrase_start is not None:
                    phrase = tr.t_samples - self._phrase_start
                    rested = self._last_nod is None or tr.t_samples - self._last_nod >= c.nod_min_gap_ms * MS
                    if phrase >= c.nod_min_phrase_ms * MS and rested:
                        self._last_nod = tr.t_samples
                        intensity = 0.6 + 0.4 * self.rng.random()
                        out.append(GestureEvent("nod", tr.t_samples, c.nod_ms, intensity, tr.turn_id))
                case Signal.PAUSE_CONFIRMED | Signal.ENGINE_TOOK_TURN:
                    self._waiting_since = tr.t_samples
                    self._waiting_turn = tr.turn_id
                case Signal.REPLY_DONE:
                    self._waiting_since = None
        return out

    def reply_started(self, turn_id: int) -> None:
        """The reply's first audio went out: no thinking cue for this turn."""
        if self._waiting_turn == turn_id:
            self._waiting_since = None

    def poll(self, t_samples: int) -> list[GestureEvent]:
        """Time passed (call every tick): due blinks and a late reply's thinking cue."""
        out: list[GestureEvent] = []
        c = self.config
        if self._waiting_since is not None and t_samples - self._waiting_since >= c.thinking_after_ms * MS:
            out.append(GestureEvent("thinking", t_samples, c.thinking_ms, 1.0, self._waiting_turn))
            self._waiting_since = None  # once per turn
        if t_samples - self._next_blink > c.blink_mean_gap_ms * MS:
            # The timeline jumped (a long suppressed silence, a restarted input): blinks that
            # were due in the skipped stretch are not replayed, however long it was.
            self._next_blink = t_samples
        while t_samples >= self._next_blink:
            at = self._next_blink
            out.append(GestureEvent("blink", at, c.blink_ms))
            if self.rng.random() < c.blink_double_p:
                out.append(GestureEvent("blink", at + (c.blink_ms + 80) * MS, c.blink_ms))
            self._next_blink = at + self._blink_gap()
        return out

    def _blink_gap(self) -> int:
        # Exponential spacing above a refractory minimum: irregular, never machine-like.
        c = self.config
        extra_ms = self.rng.expovariate(1.0 / max(c.blink_mean_gap_ms - c.blink_min_gap_ms, 1))
        return int((c.blink_min_gap_ms + extra_ms) * MS)
