"""The EVENT frames' JSON bodies, one ``TypedDict`` per ``type``: the tables of docs/protocol.md
("Events, server → client" and "Events, client → server") in code.

tests/protocol/test_events.py parses those tables and checks every kind, field and optional
field against these classes, so the spec and the code cannot drift apart silently. A client
must ignore fields and event types it does not know (docs/protocol.md).
"""

# No `from __future__ import annotations`: NotRequired must be evaluated for
# __required_keys__/__optional_keys__ to say which fields are optional (Python 3.11).

from typing import Any, Literal, NotRequired, TypeAlias, TypedDict

TurnState: TypeAlias = Literal["listening", "user_speaking", "paused", "speculating", "responding"]


class TurnBody(TypedDict):
    """Every turn-state transition."""

    type: Literal["turn"]
    state: TurnState
    turn_id: int


class TranscriptBody(TypedDict):
    type: Literal["transcript"]
    role: Literal["user", "agent"]
    text: str
    final: bool
    turn_id: int


class InterruptBody(TypedDict):
    """Drop all queued audio and animation at or after ``cut_at`` (output timeline)."""

    type: Literal["interrupt"]
    turn_id: int
    cut_at: int
    reason: NotRequired[Literal["retracted", "yield"]]  # absent: the user barged in
    sent_until: NotRequired[int]  # WebRTC: where what the server had sent of the reply ends


class RtpClockBody(TypedDict):
    """WebRTC only: RTP timestamp − ``origin`` (mod 2³²) is the output-timeline sample."""

    type: Literal["rtp_clock"]
    origin: int
    rate: int


class CloseBody(TypedDict):
    """WebRTC only: the session ends with the WebSocket's close code and reason."""

    type: Literal["close"]
    code: int
    reason: str


class GestureBody(TypedDict):
    """An avatar cue at output sample ``at``, or now when ``at`` is null."""

    type: Literal["gesture"]
    name: str
    at: int | None
    turn_id: int | None
    intensity: NotRequired[float]
    duration_ms: NotRequired[int]


class ExpressionBody(TypedDict):
    """A facial expression from ``at`` (output sample; null: now), only with the ``expressions``
    feature: one per clause of the reply, and the user's tone mirrored (``source`` "user")."""

    type: Literal["expression"]
    name: str
    intensity: float
    at: int | None
    ramp_ms: int
    turn_id: int | None
    weights: dict[str, float]
    source: NotRequired[Literal["user"]]


class MetricsBody(TypedDict):
    """End of each turn: times in ms after the user's last speech arrived (null: never)."""

    type: Literal["metrics"]
    turn_id: int
    speech_start_sample: int | None
    speech_end_sample: int | None
    last_speech_received_ms: float | None
    pause_detected_ms: float | None
    speculation_started_ms: float | None
    turn_confirmed_ms: float | None
    engine_first_audio_ms: float | None
    first_audio_sent_ms: float | None
    first_animation_sent_ms: float | None
    reply_end_ms: float | None
    abandoned_speculations: int
    interrupted: bool
    yields: int
    yield_heard_samples: int | None
    heard_samples: int | None
    turn_confirmed_sample: int | None
    reply_start_sample: int | None
    reply_end_sample: int | None
    user_text: str
    agent_text: str
    error: str | None
    outcome: str | None  # "done", "error" or "interrupted"
    endpoint: dict[str, Any] | None
    animation: dict[str, Any] | None


class ErrorBody(TypedDict):
    type: Literal["error"]
    code: str
    message: str
    turn_id: NotRequired[int | None]


class PlaybackBody(TypedDict):
    """What the listener has heard so far (output timeline)."""

    type: Literal["playback"]
    heard_until: int


class ClientMetricsBody(TypedDict):
    """The client's own measurements, for logs; any other fields are free-form."""

    type: Literal["client_metrics"]


ServerEvent: TypeAlias = (
    TurnBody
    | TranscriptBody
    | InterruptBody
    | RtpClockBody
    | CloseBody
    | GestureBody
    | ExpressionBody
    | MetricsBody
    | ErrorBody
)
ClientEvent: TypeAlias = PlaybackBody | ClientMetricsBody

#: ``type`` → body class, in the order of docs/protocol.md's tables.
SERVER_EVENTS: dict[str, type[Any]] = {
    "turn": TurnBody,
    "transcript": TranscriptBody,
    "interrupt": InterruptBody,
    "rtp_clock": RtpClockBody,
    "close": CloseBody,
    "gesture": GestureBody,
    "expression": ExpressionBody,
    "metrics": MetricsBody,
    "error": ErrorBody,
}
CLIENT_EVENTS: dict[str, type[Any]] = {"playback": PlaybackBody, "client_metrics": ClientMetricsBody}
