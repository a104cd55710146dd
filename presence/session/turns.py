"""Turn-taking as a pure state machine: VAD decisions and time in, turn transitions out.

The legal moves are one table, ``TRANSITIONS``; anything else is impossible by construction.
Time is an argument (``t_samples`` on the 16 kHz input timeline); nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from presence.engines.base import INPUT_SAMPLE_RATE, TurnEvent, TurnEventKind


class TurnState(Enum):
    LISTENING = "listening"  # nobody speaks
    USER_SPEAKING = "user_speaking"
    PAUSED = "paused"  # the user stopped, not yet long enough to speculate
    SPECULATING = "speculating"  # reply being prepared, held back
    RESPONDING = "responding"  # reply released; the agent speaks


class Signal(Enum):
    SPEECH = "speech"  # the VAD heard speech (after onset hysteresis)
    PAUSE_SHORT = "pause_short"  # silence reached the speculation threshold
    PAUSE_CONFIRMED = "pause_confirmed"  # silence satisfied the confirmation rule
    SPEECH_RESUMED = "speech_resumed"  # speech after a pause, same turn
    BARGE_IN = "barge_in"  # speech long enough to interrupt the agent
    REPLY_DONE = "reply_done"  # the agent finished (or was cut)
    SILENCE = "silence"  # the user stopped (before any threshold)


#: (state, signal) → next state. The table is the specification; tests enumerate it.
TRANSITIONS: Final[dict[tuple[TurnState, Signal], TurnState]] = {
    (TurnState.LISTENING, Signal.SPEECH): TurnState.USER_SPEAKING,
    (TurnState.USER_SPEAKING, Signal.SILENCE): TurnState.PAUSED,
    (TurnState.PAUSED, Signal.SPEECH_RESUMED): TurnState.USER_SPEAKING,
    (TurnState.PAUSED, Signal.PAUSE_SHORT): TurnState.SPECULATING,
    (TurnState.PAUSED, Signal.PAUSE_CONFIRMED): TurnState.RESPONDING,
    (TurnState.SPECULATING, Signal.SPEECH_RESUMED): TurnState.USER_SPEAKING,
    (TurnState.SPECULATING, Signal.PAUSE_CONFIRMED): TurnState.RESPONDING,
    (TurnState.RESPONDING, Signal.BARGE_IN): TurnState.USER_SPEAKING,
    (TurnState.RESPONDING, Signal.REPLY_DONE): TurnState.LISTENING,
}


class IllegalTransition(Exception):
    """A signal that the table does not allow in the current state (a bug in the caller)."""


@dataclass(frozen=True, slots=True)
class TurnConfig:
    """Thresholds in milliseconds; defaults are chosen by ``presence bench endpointing``."""

    speech_threshold: float = 0.5  # VAD probability that counts as speech
    min_speech_ms: int = 64  # speech must last this long to start a turn (clicks, coughs)
    speculate_ms: int = 96  # silence after which the reply starts, held back
    confirm_ms: int = 320  # silence after which the turn is over (fixed-silence rule)
    min_barge_in_ms: int = 200  # agent speech is interrupted only by speech this long


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change, with the engine-facing event it implies (if any)."""

    previous: TurnState
    state: TurnState
    signal: Signal
    turn_id: int
    t_samples: int
    engine_event: TurnEvent | None = None


def _ms_to_samples(ms: int) -> int:
    return ms * INPUT_SAMPLE_RATE // 1000


class TurnTaker:
    """Feed one VAD decision per window with ``on_vad(prob, t_samples)``; read transitions back."""

    def __init__(self, config: TurnConfig | None = None) -> None:
        self.config = config or TurnConfig()
        self.state = TurnState.LISTENING
        self.turn_id = 0
        self._speech_run_start: int | None = None  # first sample of the current speech run
        self._silence_start: int | None = None  # first sample of the current silence
        self.last_speech_end: int | None = None  # input sample where the user last went quiet

    def on_vad(self, prob: float, t_samples: int, window_samples: int) -> list[Transition]:
        """One VAD window that began at ``t_samples`` and lasted ``window_samples``."""
        end = t_samples + window_samples
        if prob >= self.config.speech_threshold:
            return self._on_speech(t_samples, end)
        return self._on_silence(t_samples, end)

    def reply_done(self, t_samples: int) -> list[Transition]:
        """The agent's reply for the current turn ended (played out, failed or was empty)."""
        if self.state is not TurnState.RESPONDING:
            return []
        return [self._move(Signal.REPLY_DONE, t_samples)]

    def _on_speech(self, start: int, end: int) -> list[Transition]:
        self._silence_start = None
        if self._speech_run_start is None:
            self._speech_run_start = start
        run = end - self._speech_run_start
        match self.state:
            case TurnState.LISTENING if run >= _ms_to_samples(self.config.min_speech_ms):
                self.turn_id += 1
                return [self._move(Signal.SPEECH, self._speech_run_start, TurnEventKind.USER_STARTED)]
            case TurnState.PAUSED:
                return [self._move(Signal.SPEECH_RESUMED, start)]
            case TurnState.SPECULATING:
                return [self._move(Signal.SPEECH_RESUMED, start, TurnEventKind.TURN_ABANDONED)]
            case TurnState.RESPONDING if run >= _ms_to_samples(self.config.min_barge_in_ms):
                self.turn_id += 1
                return [self._move(Signal.BARGE_IN, self._speech_run_start, TurnEventKind.USER_STARTED)]
        return []

    def _on_silence(self, start: int, end: int) -> list[Transition]:
        self._speech_run_start = None
        if self._silence_start is None:
            self._silence_start = start
        silence = end - self._silence_start
        out: list[Transition] = []
        if self.state is TurnState.USER_SPEAKING:
            self.last_speech_end = self._silence_start
            out.append(self._move(Signal.SILENCE, self._silence_start))
        if self.state is TurnState.PAUSED and silence >= _ms_to_samples(self.config.speculate_ms):
            out.append(self._move(Signal.PAUSE_SHORT, end, TurnEventKind.USER_PAUSED))
        if self.state in (TurnState.PAUSED, TurnState.SPECULATING) and silence >= _ms_to_samples(
            self.config.confirm_ms
        ):
            out.append(self._move(Signal.PAUSE_CONFIRMED, end, TurnEventKind.TURN_CONFIRMED))
        return out

    def _move(self, signal: Signal, t_samples: int, kind: TurnEventKind | None = None) -> Transition:
        next_state = TRANSITIONS.get((self.state, signal))
        if next_state is None:
            raise IllegalTransition(f"{signal.value} is not allowed in {self.state.value}")
        event = TurnEvent(kind, self.turn_id, t_samples) if kind else None
        transition = Transition(self.state, next_state, signal, self.turn_id, t_samples, event)
        self.state = next_state
        return transition
