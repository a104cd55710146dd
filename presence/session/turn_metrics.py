"""Per-turn endpointing marks, on the input timeline, and the histograms that export them.

``TurnMarks`` is filled from the turn machine's transitions, so its times are exact media
time (16 kHz samples), free of scheduling noise: user speech end (VAD), pause detected,
speculation started, turn confirmed, plus the abandoned-speculation count. The session adds
the wall-clock instants only it knows (engine first audio, first frame sent) with
``mark_s``. ``TurnHistograms`` defines the Prometheus series on a registry the caller owns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

from presence.media import INPUT_SAMPLE_RATE
from presence.session.turns import Signal, Transition, TurnState


def _ms(samples: int | None) -> float | None:
    return None if samples is None else round(samples * 1000 / INPUT_SAMPLE_RATE, 1)


@dataclass(slots=True)
class TurnMarks:
    turn_id: int
    speech_start_sample: int | None = None
    speech_end_sample: int | None = None  # the VAD's last speech before the confirmed pause
    pause_detected_sample: int | None = None
    speculation_started_sample: int | None = None
    turn_confirmed_sample: int | None = None
    confirm_after_ms: float | None = None  # what the rule asked of the confirming pause
    pauses: int = 0
    abandoned_speculations: int = 0
    wall_s: dict[str, float] = field(default_factory=dict)  # engine_first_audio, first_frame_sent…

    def observe(self, tr: Transition) -> None:
        match tr.signal:
            case Signal.SPEECH | Signal.BARGE_IN:
                self.speech_start_sample = tr.t_samples
            case Signal.SILENCE:
                self.pauses += 1
                self.speech_end_sample = self.pause_detected_sample = tr.t_samples
                self.confirm_after_ms = tr.confirm_after_ms
                self.speculation_started_sample = None
            case Signal.PAUSE_SHORT:
                self.speculation_started_sample = tr.t_samples
            case Signal.SPEECH_RESUMED:
                if tr.previous is TurnState.SPECULATING:
                    self.abandoned_speculations += 1
                self.speculation_started_sample = None
            case Signal.PAUSE_CONFIRMED | Signal.ENGINE_TOOK_TURN:
                self.turn_confirmed_sample = tr.t_samples
            case Signal.USER_RESUMED:  # the release was early: the turn's real end is later
                self.turn_confirmed_sample = None
                self.speculation_started_sample = None

    def mark_s(self, name: str, t_s: float) -> None:
        """A wall-clock instant (session clock, seconds) that only the session sees; first wins."""
        self.wall_s.setdefault(name, t_s)

    @property
    def endpoint_delay_ms(self) -> float | None:
        """Turn confirmed − the VAD's end of speech: what the confirmation rule cost."""
        if self.turn_confirmed_sample is None or self.speech_end_sample is None:
            return None
        return _ms(self.turn_confirmed_sample - self.speech_end_sample)

    @property
    def speculation_lead_ms(self) -> float | None:
        """Speculation started → confirmed: the head start the engine got."""
        if self.turn_confirmed_sample is None or self.speculation_started_sample is None:
            return None
        return _ms(self.turn_confirmed_sample - self.speculation_started_sample)

    def to_json(self) -> dict[str, Any]:
        """Fields for the end-of-turn event: input-timeline positions in ms, and the deltas.

        Wall-clock marks are given relative to the turn's confirmation, when both are known.
        """
        confirmed = self.wall_s.get("turn_confirmed")
        return {
            "turn_id": self.turn_id,
            "speech_start_ms": _ms(self.speech_start_sample),
            "speech_end_ms": _ms(self.speech_end_sample),
            "pause_detected_ms": _ms(self.pause_detected_sample),
            "speculation_started_ms": _ms(self.speculation_started_sample),
            "turn_confirmed_ms": _ms(self.turn_confirmed_sample),
            "endpoint_delay_ms": self.endpoint_delay_ms,
            "speculation_lead_ms": self.speculation_lead_ms,
            "confirm_after_ms": self.confirm_after_ms,
            "pauses": self.pauses,
            "abandoned_speculations": self.abandoned_speculations,
            "after_confirm_ms": {
                name: round((t - confirmed) * 1000, 1) for name, t in self.wall_s.items() if confirmed is not None
            },
        }


class TurnLog:
    """The marks of every open turn; feed it all transitions, collect a turn when it ends."""

    def __init__(self) -> None:
        self.open: dict[int, TurnMarks] = {}

    def observe(self, transitions: list[Transition]) -> None:
        for tr in transitions:
            marks = self.open.get(tr.turn_id)
            if marks is None:
                marks = self.open[tr.turn_id] = TurnMarks(tr.turn_id)
            marks.observe(tr)

    def finish(self, turn_id: int) -> TurnMarks | None:
        return self.open.pop(turn_id, None)


_DELAY_BUCKETS_S = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0)


class TurnHistograms:
    """Endpointing histograms registered on ``registry`` (one per app, so tests can run many)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.endpoint_delay = Histogram(
            "presence_turn_endpoint_delay_seconds",
            "VAD end of speech → turn confirmed, input-timeline time (the confirmation rule's cost)",
            buckets=_DELAY_BUCKETS_S,
            registry=registry,
        )
        self.speculation_lead = Histogram(
            "presence_turn_speculation_lead_seconds",
            "Speculative reply started → turn confirmed (head start given to the engine)",
            buckets=_DELAY_BUCKETS_S,
            registry=registry,
        )
        self.abandoned = Histogram(
            "presence_turn_abandoned_speculations",
            "Speculative replies thrown away per turn because the user went on",
            buckets=(0, 1, 2, 3, 5, 8),
            registry=registry,
        )
        self.pauses = Histogram(
            "presence_turn_pauses", "Pauses per turn (the last one ends it)", buckets=(1, 2, 3, 5, 8), registry=registry
        )

    def observe(self, marks: TurnMarks) -> None:
        if marks.endpoint_delay_ms is not None:
            self.endpoint_delay.observe(marks.endpoint_delay_ms / 1000)
        if marks.speculation_lead_ms is not None:
            self.speculation_lead.observe(marks.speculation_lead_ms / 1000)
        self.abandoned.observe(marks.abandoned_speculations)
        self.pauses.observe(marks.pauses)
