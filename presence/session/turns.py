"""Turn-taking as a pure state machine: VAD decisions and time in, turn transitions out.

The legal moves are one table, ``TRANSITIONS`` (with the engine event each move implies in
``ENGINE_EVENTS``); anything else raises ``IllegalTransition`` by construction. Time is an
argument (``t_samples`` on the 16 kHz input timeline); nothing here reads a clock. When a
pause ends the turn is the ``ConfirmationRule``'s decision (endpointing.py): a silence chosen
when the pause begins, or, for a rule that decides window by window, its ``confirm_early``
answer at each silent window. docs/turn-taking.md is generated from these tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from presence.audio.prosody import PauseCue, ProsodyTracker
from presence.endofturn.predictor import PauseContext
from presence.engines.base import TurnEvent, TurnEventKind
from presence.media import INPUT_SAMPLE_RATE, Samples, ms_to_samples
from presence.session import defaults
from presence.session.endpointing import ConfirmationRule, FixedSilence


class TurnState(Enum):
    LISTENING = "listening"  # nobody speaks
    USER_SPEAKING = "user_speaking"
    PAUSED = "paused"  # the user stopped, not yet long enough to speculate
    SPECULATING = "speculating"  # reply being prepared, held back
    RESPONDING = "responding"  # reply released; the agent speaks


class Signal(Enum):
    SPEECH = "speech"  # the VAD heard speech for min_speech_ms (onset hysteresis)
    PAUSE_SHORT = "pause_short"  # silence reached the speculation threshold
    PAUSE_CONFIRMED = "pause_confirmed"  # silence satisfied the confirmation rule
    SPEECH_RESUMED = "speech_resumed"  # speech after a pause, same turn
    BARGE_IN = "barge_in"  # speech long enough to interrupt the agent
    REPLY_DONE = "reply_done"  # the agent finished (or was cut)
    SILENCE = "silence"  # the user stopped (before any threshold)
    ENGINE_TOOK_TURN = "engine_took_turn"  # an engine with its own turn detection is answering
    USER_RESUMED = "user_resumed"  # speech right after a release: the user had not finished


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
    (TurnState.PAUSED, Signal.ENGINE_TOOK_TURN): TurnState.RESPONDING,
    (TurnState.SPECULATING, Signal.ENGINE_TOOK_TURN): TurnState.RESPONDING,
    (TurnState.RESPONDING, Signal.USER_RESUMED): TurnState.USER_SPEAKING,
}

#: The engine-facing event a move implies; moves not listed tell the engine nothing.
ENGINE_EVENTS: Final[dict[tuple[TurnState, Signal], TurnEventKind]] = {
    (TurnState.LISTENING, Signal.SPEECH): TurnEventKind.USER_STARTED,
    (TurnState.PAUSED, Signal.PAUSE_SHORT): TurnEventKind.USER_PAUSED,
    (TurnState.PAUSED, Signal.PAUSE_CONFIRMED): TurnEventKind.TURN_CONFIRMED,
    (TurnState.SPECULATING, Signal.SPEECH_RESUMED): TurnEventKind.TURN_ABANDONED,
    (TurnState.SPECULATING, Signal.PAUSE_CONFIRMED): TurnEventKind.TURN_CONFIRMED,
    (TurnState.RESPONDING, Signal.BARGE_IN): TurnEventKind.USER_STARTED,
    (TurnState.PAUSED, Signal.ENGINE_TOOK_TURN): TurnEventKind.TURN_CONFIRMED,
    (TurnState.SPECULATING, Signal.ENGINE_TOOK_TURN): TurnEventKind.TURN_CONFIRMED,
    (TurnState.RESPONDING, Signal.USER_RESUMED): TurnEventKind.TURN_RESUMED,
}

#: Why each move happens, for the generated documentation.
WHY: Final[dict[tuple[TurnState, Signal], str]] = {
    (TurnState.LISTENING, Signal.SPEECH): "speech lasted min_speech_ms: a new turn",
    (TurnState.USER_SPEAKING, Signal.SILENCE): "the first silent window; the rule picks this pause's confirm time",
    (TurnState.PAUSED, Signal.SPEECH_RESUMED): "speech before speculate_ms: same turn, nothing to cancel",
    (TurnState.PAUSED, Signal.PAUSE_SHORT): "silence reached speculate_ms: the engine starts, output held",
    (TurnState.PAUSED, Signal.PAUSE_CONFIRMED): "the rule confirmed before speculate_ms: no speculation",
    (TurnState.SPECULATING, Signal.SPEECH_RESUMED): "the user went on: the speculative reply is dropped",
    (
        TurnState.SPECULATING,
        Signal.PAUSE_CONFIRMED,
    ): "the rule confirmed (its silence or the predictor): reply released",
    (TurnState.RESPONDING, Signal.BARGE_IN): "user speech lasted min_barge_in_ms: the reply is cut, a new turn",
    (TurnState.RESPONDING, Signal.REPLY_DONE): "the reply played out (or failed, or was empty)",
    (TurnState.PAUSED, Signal.ENGINE_TOOK_TURN): "the engine's own turn detection answered (model turns)",
    (TurnState.SPECULATING, Signal.ENGINE_TOOK_TURN): "the engine's own turn detection answered (model turns)",
    (TurnState.RESPONDING, Signal.USER_RESUMED): (
        "speech (min_speech_ms) within yield_window_ms of the release: it was early; the agent yields, same turn"
    ),
}


class IllegalTransition(Exception):
    """A signal that the table does not allow in the current state (a bug in the caller)."""


def next_state(state: TurnState, signal: Signal) -> TurnState:
    """The table lookup; raises ``IllegalTransition`` for a pair the table does not hold."""
    try:
        return TRANSITIONS[(state, signal)]
    except KeyError:
        raise IllegalTransition(f"{signal.value} is not allowed in {state.value}") from None


@dataclass(frozen=True, slots=True)
class TurnConfig:
    """Thresholds in milliseconds; defaults are chosen by ``presence bench endpointing``.

    ``rule`` decides each pause's confirmation silence; without one, ``FixedSilence(confirm_ms)``.
    ``silence_threshold`` is the VAD probability below which a speech run ends (hysteresis:
    a run starts at ``speech_threshold`` and survives dips above ``silence_threshold``).
    """

    speech_threshold: float = 0.5
    min_speech_ms: int = defaults.MIN_SPEECH_MS  # speech must last this long to start a turn
    speculate_ms: int = defaults.SPECULATE_MS  # silence after which the reply starts, held back
    confirm_ms: int = defaults.CONFIRM_MS  # silence after which the turn is over (fixed-silence rule)
    min_barge_in_ms: int = defaults.MIN_BARGE_IN_MS  # agent speech is interrupted only by speech this long
    # Speech this soon after the turn was confirmed means the release was early: the agent
    # yields at min_speech_ms and the user's turn goes on. 0 (off): every resumption must
    # barge in (min_barge_in_ms), which suits rules that wait long enough not to release early.
    yield_window_ms: int = 0
    silence_threshold: float = 0.35
    rule: ConfirmationRule | None = None

    def confirmation_rule(self) -> ConfirmationRule:
        return self.rule if self.rule is not None else FixedSilence(float(self.confirm_ms))


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change, with the engine-facing event it implies (if any).

    ``confirm_after_ms`` is set on ``SILENCE`` moves: the silence the rule asked of this pause.
    """

    previous: TurnState
    state: TurnState
    signal: Signal
    turn_id: int
    t_samples: int
    engine_event: TurnEvent | None = None
    confirm_after_ms: float | None = None


@dataclass(slots=True)
class _Runs:
    speech_start: int | None = None  # first sample of the current speech run
    silence_start: int | None = None  # first sample of the current silence
    confirm_after_samples: int = 0  # the current pause's confirmation silence
    cue: PauseCue = field(default_factory=PauseCue.unknown)
    engine_claimed: bool = False  # the engine took this turn while the VAD still heard speech
    last_run_start: int = 0  # first sample of the speech run that ended into this pause
    last_run_samples: int = 0
    pause_max_prob: float = 0.0  # highest VAD probability inside the current pause


class TurnTaker:
    """Feed one VAD decision per window with ``on_vad``; read transitions back.

    Pass the window's audio too (``audio=``) when the rule uses prosody; without it the
    adaptive rule sees an unknown cue and answers halfway between its two silences.
    """

    def __init__(self, config: TurnConfig | None = None) -> None:
        self.config = config or TurnConfig()
        self.rule = self.config.confirmation_rule()
        self.prosody = ProsodyTracker() if self.rule.uses_prosody else None
        self.state = TurnState.LISTENING
        self.turn_id = 0
        self._runs = _Runs()
        self.last_speech_end: int | None = None  # input sample where the user last went quiet
        self.released_at: int | None = None  # input sample where the current reply was released
        self._transcript: tuple[str, int] | None = None  # (words, input sample they cover up to)

    @property
    def last_cue(self) -> PauseCue:
        """The prosodic cue the rule read at the start of the current (or last) pause."""
        return self._runs.cue

    def on_vad(
        self, prob: float, t_samples: int, window_samples: int, audio: Samples | None = None
    ) -> list[Transition]:
        """One VAD window that began at ``t_samples`` and lasted ``window_samples``."""
        end = t_samples + window_samples
        in_speech = self._runs.speech_start is not None
        threshold = self.config.silence_threshold if in_speech else self.config.speech_threshold
        if prob >= threshold:
            if self.prosody is not None and audio is not None:
                self.prosody.push_speech(audio, t_samples)
            return self._on_speech(t_samples, end)
        return self._on_silence(t_samples, end, prob)

    def on_transcript(self, text: str, covers_until_samples: int) -> None:
        """The current turn's words so far, as the ASR heard them up to ``covers_until_samples``.

        Only a rule that decides window by window (the predictor) reads them, and only once
        they cover the whole speech run that ended into the pause (up to its first silent
        sample); an older transcript counts as unknown. A new turn (``user_started``) forgets the previous turn's words.
        """
        self._transcript = (text, covers_until_samples)

    def reply_done(self, t_samples: int) -> list[Transition]:
        """The agent's reply for the current turn ended (played out, failed or was empty)."""
        if self.state is not TurnState.RESPONDING:
            return []
        return [self._move(Signal.REPLY_DONE, t_samples)]

    def engine_took_turn(self, turn_id: int, t_samples: int) -> list[Transition]:
        """An engine that detects turns itself is answering ``turn_id``: confirm it now.

        Only a pause can be confirmed: if the VAD still hears the user, the claim waits for
        the first silent window of this turn. A claim for any other turn is stale and ignored.
        """
        if turn_id != self.turn_id or self.state in (TurnState.LISTENING, TurnState.RESPONDING):
            return []
        if self.state is TurnState.USER_SPEAKING:
            self._runs.engine_claimed = True
            return []
        return [self._move(Signal.ENGINE_TOOK_TURN, t_samples)]

    def _on_speech(self, start: int, end: int) -> list[Transition]:
        runs = self._runs
        runs.silence_start = None
        if runs.speech_start is None:
            runs.speech_start = start
        run = end - runs.speech_start
        match self.state:
            case TurnState.LISTENING if run >= ms_to_samples(self.config.min_speech_ms):
                self.turn_id += 1
                runs.engine_claimed = False
                self._transcript = None
                return [self._move(Signal.SPEECH, runs.speech_start)]
            case TurnState.PAUSED | TurnState.SPECULATING:
                return [self._move(Signal.SPEECH_RESUMED, start)]
            case TurnState.RESPONDING if self._within_yield_window(runs.speech_start) and run >= ms_to_samples(
                self.config.min_speech_ms
            ):
                return [self._move(Signal.USER_RESUMED, runs.speech_start)]
            case TurnState.RESPONDING if run >= ms_to_samples(self.config.min_barge_in_ms):
                self.turn_id += 1
                runs.engine_claimed = False
                self._transcript = None
                return [self._move(Signal.BARGE_IN, runs.speech_start)]
        return []

    def _on_silence(self, start: int, end: int, prob: float = 0.0) -> list[Transition]:
        runs = self._runs
        if runs.speech_start is not None:
            runs.last_run_start, runs.last_run_samples = runs.speech_start, start - runs.speech_start
        runs.speech_start = None
        if runs.silence_start is None:
            runs.silence_start = start
            runs.pause_max_prob = 0.0
        runs.pause_max_prob = max(runs.pause_max_prob, prob)
        silence = end - runs.silence_start
        out: list[Transition] = []
        if self.state is TurnState.USER_SPEAKING:
            self.last_speech_end = runs.silence_start
            runs.cue = self.prosody.cue() if self.prosody is not None else PauseCue.unknown()
            confirm_ms = self.rule.confirm_after_ms(runs.cue)
            runs.confirm_after_samples = ms_to_samples(confirm_ms)
            out.append(self._move(Signal.SILENCE, runs.silence_start, confirm_after_ms=confirm_ms))
            if runs.engine_claimed:
                runs.engine_claimed = False
                out.append(self._move(Signal.ENGINE_TOOK_TURN, end))
                return out
        if self.state is TurnState.PAUSED and silence >= ms_to_samples(self.config.speculate_ms):
            out.append(self._move(Signal.PAUSE_SHORT, end))
        if self.state in (TurnState.PAUSED, TurnState.SPECULATING) and (
            silence >= runs.confirm_after_samples or self.rule.confirm_early(self._pause_context(silence))
        ):
            out.append(self._move(Signal.PAUSE_CONFIRMED, end))
        return out

    def _within_yield_window(self, speech_start: int) -> bool:
        window = ms_to_samples(self.config.yield_window_ms)
        return window > 0 and self.released_at is not None and speech_start - self.released_at < window

    def pause_context(self, t_samples: int) -> PauseContext | None:
        """What a window-by-window rule sees at ``t_samples`` of the current pause (None outside one)."""
        if self._runs.silence_start is None or self.state not in (TurnState.PAUSED, TurnState.SPECULATING):
            return None
        return self._pause_context(t_samples - self._runs.silence_start)

    def _pause_context(self, silence_samples: int) -> PauseContext:
        runs = self._runs
        text = self._transcript
        covered = text is not None and runs.silence_start is not None and text[1] >= runs.silence_start
        return PauseContext(
            silence_ms=silence_samples * 1000 / INPUT_SAMPLE_RATE,
            cue=runs.cue,
            transcript=text[0] if text is not None and covered else None,
            pause_max_prob=runs.pause_max_prob,
            run_ms=runs.last_run_samples * 1000 / INPUT_SAMPLE_RATE,
        )

    def _move(self, signal: Signal, t_samples: int, confirm_after_ms: float | None = None) -> Transition:
        key = (self.state, signal)
        target = next_state(*key)
        if target is TurnState.RESPONDING:
            self.released_at = t_samples
        elif self.state is TurnState.RESPONDING:
            self.released_at = None
        kind = ENGINE_EVENTS.get(key)
        event = TurnEvent(kind, self.turn_id, t_samples) if kind is not None else None
        transition = Transition(self.state, target, signal, self.turn_id, t_samples, event, confirm_after_ms)
        self.state = target
        return transition
