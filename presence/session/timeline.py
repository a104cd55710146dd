"""The output timeline: the one clock that audio, animation and cut points are stamped on.

Positions are integer samples at the output rate, counted from the session's start. Wall
time enters only here, as an argument, to place a new reply no earlier than "now".
"""

from __future__ import annotations


class OutputTimeline:
    """Places replies on the timeline and maps wall-clock seconds to timeline samples."""

    def __init__(self, sample_rate: int, origin_s: float) -> None:
        self.sample_rate = sample_rate
        self.origin_s = origin_s
        self.cursor = 0  # first free sample after everything already placed

    def now_sample(self, now_s: float) -> int:
        return int((now_s - self.origin_s) * self.sample_rate)

    def place(self, now_s: float) -> int:
        """Start of a new segment: now, or after the previous one if that still plays."""
        self.cursor = max(self.cursor, self.now_sample(now_s))
        return self.cursor

    def advance(self, samples: int) -> int:
        """Reserve ``samples`` at the cursor; returns where they start."""
        start = self.cursor
        self.cursor += samples
        return start

    def cut(self, at_sample: int) -> None:
        """An interruption: nothing placed after ``at_sample`` will be heard."""
        self.cursor = min(self.cursor, at_sample)

    def lead_s(self, now_s: float) -> float:
        """How far the placed audio runs ahead of real time (negative when behind)."""
        return (self.cursor - self.now_sample(now_s)) / self.sample_rate
