"""Per-turn timestamps: where the time between the user's last word and the reply went.

Times are the session clock's seconds (monotonic); the event sent to the client gives each
as milliseconds after the moment the frame carrying the user's last speech arrived.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from presence.session.turn_metrics import TurnMarks


@dataclass(slots=True)
class TurnRecord:
    turn_id: int
    speech_start_sample: int | None = None  # input timeline (16 kHz), from the VAD
    speech_end_sample: int | None = None
    last_speech_received_s: float | None = None  # arrival of the frame with the last speech
    pause_detected_s: float | None = None
    speculation_started_s: float | None = None
    turn_confirmed_s: float | None = None
    engine_first_audio_s: float | None = None
    first_audio_sent_s: float | None = None
    first_animation_sent_s: float | None = None
    reply_end_s: float | None = None
    abandoned_speculations: int = 0
    interrupted: bool = False
    yields: int = 0  # early releases the user talked over (the agent yielded, the turn went on)
    yield_heard_samples: int | None = None  # output samples of those replies the user heard
    heard_samples: int | None = None
    turn_confirmed_sample: int | None = None  # input timeline: the sample that settled it
    reply_start_sample: int | None = None  # output timeline
    reply_end_sample: int | None = None
    user_text: str = ""
    agent_text: str = ""
    error: str | None = None
    outcome: str | None = None  # "done", "error" or "interrupted", decided when the turn ends
    marks: TurnMarks | None = None  # sample-exact turn-taking decisions (input timeline)
    animation: dict[str, Any] | None = None  # the animator's report (e.g. effective look-ahead)

    def to_json(self) -> dict[str, Any]:
        """The ``metrics`` event body: ms after the last speech arrived, plus counts."""
        origin = self.last_speech_received_s
        body: dict[str, Any] = {"type": "metrics", "turn_id": self.turn_id}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "marks":
                body["endpoint"] = value.to_json() if value is not None else None
            elif f.name.endswith("_s"):
                name = f.name[:-2] + "_ms"
                body[name] = None if value is None or origin is None else round((value - origin) * 1000, 3)
            elif f.name != "turn_id":
                body[f.name] = value
        body["last_speech_received_ms"] = 0.0 if origin is not None else None
        return body

    def release_s(self) -> float | None:
        """When the reply could first go out: confirmed and the engine had audio."""
        if self.turn_confirmed_s is None or self.engine_first_audio_s is None:
            return None
        return max(self.turn_confirmed_s, self.engine_first_audio_s)
