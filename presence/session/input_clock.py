"""Client timestamps are untrusted: bound them by the session's real clock before using them.

The input timeline is the client's to stamp (docs/protocol.md), and the server fills gaps in
it with silence, runs the VAD over it and schedules blinks along it. A client that stamps
audio far in the future would make the server synthesise, score and schedule hours of
timeline from a 26-byte frame. So every AUDIO_IN frame is checked, before any of that, against
the real time since the session's first audio frame:

- its first timestamp must lie in ``[0, MAX_FIRST_TIMESTAMP]``;
- the end of its audio may run ahead of the first frame's timestamp plus the real time elapsed
  (× ``1 + drift``, for sound cards whose clocks run fast) by at most ``lead_ms``;
- frames arrive at most ``frames_per_s`` on average, with a burst of ``burst_frames`` (a
  network stall delivers a backlog at once).

Pure: the caller passes arrival time in seconds. A violation raises ``InputOutOfBounds``,
which the transport turns into close 1008 with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from presence.protocol.errors import InputOutOfBounds

MAX_FIRST_TIMESTAMP: Final = 2**48  # ~186 years at 48 kHz: any real clock, and no overflow games


@dataclass(frozen=True, slots=True)
class InputLimits:
    lead_ms: int = 1000  # audio may end this far ahead of real time (capture buffering, jitter)
    drift: float = 0.01  # and run this much faster than the server's clock
    frames_per_s: float = 200.0  # a microphone sends 50–100 frames a second
    burst_frames: int = 400


class InputClock:
    """Holds the anchor (first timestamp, its arrival) and a frame-rate token bucket."""

    def __init__(self, sample_rate: int, limits: InputLimits | None = None) -> None:
        self.sample_rate = sample_rate
        self.limits = limits or InputLimits()
        self._anchor: tuple[int, float] | None = None  # (first timestamp, arrival seconds)
        self._tokens = float(self.limits.burst_frames)
        self._tokens_at: float | None = None

    def check(self, timestamp: int, n_samples: int, now_s: float) -> None:
        """One AUDIO_IN frame of ``n_samples`` stamped ``timestamp`` arrived at ``now_s``."""
        self._take_token(now_s)
        if self._anchor is None:
            if not 0 <= timestamp <= MAX_FIRST_TIMESTAMP:
                raise InputOutOfBounds(f"first audio timestamp {timestamp} is outside 0..2^48")
            self._anchor = (timestamp, now_s)
        first, at = self._anchor
        limits = self.limits
        allowed_end = first + int(((now_s - at) * (1 + limits.drift) + limits.lead_ms / 1000) * self.sample_rate)
        ahead = timestamp + n_samples - allowed_end
        if ahead > 0:
            raise InputOutOfBounds(
                f"audio timestamp runs {ahead / self.sample_rate:.1f} s ahead of real time "
                f"(at most {limits.lead_ms} ms allowed)"
            )

    def _take_token(self, now_s: float) -> None:
        limits = self.limits
        if self._tokens_at is not None:
            elapsed = max(0.0, now_s - self._tokens_at)
            self._tokens = min(float(limits.burst_frames), self._tokens + elapsed * limits.frames_per_s)
        self._tokens_at = now_s
        if self._tokens < 1:
            raise InputOutOfBounds(f"audio frames arrive faster than {limits.frames_per_s:g} a second")
        self._tokens -= 1
