"""One conversation's decisions, sans I/O: frames, engine outputs and time in; actions out.

``SessionCore`` never reads a clock, sleeps, owns a task or touches a socket: every input
carries ``now`` (the session clock, seconds) and every effect comes back as an ``Action`` for
the adapter (session.py) to perform in order. Timers are deadlines the adapter asks for
(``next_deadline``) and reports back through ``on_tick``. So a trace of inputs replays
exactly, a test drives hold, release, retract, barge-in and timeouts in microseconds, and a
second transport can drive the same core.

Engine calls that the core must hear back from (a confirmation, an abandoned speculation, a
yield) come as ``TellEngine(ack=True)``; the adapter calls ``on_engine_told`` once the engine
returned, because the engine's contract is that nothing of a dropped reply is left in its
queue by then. What the engine sends in between belongs to the old reply, which the
lifecycle table (replies.py) makes absorb it.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeAlias, cast

from presence.audio.vad import VoiceActivityDetector
from presence.engines.base import (
    EngineError,
    EngineOutput,
    GestureHint,
    Interrupt,
    ReplyEnd,
    Transcript,
    TurnEvent,
    TurnEventKind,
    TurnTaken,
)
from presence.expression.mirror import mirror_event
from presence.lipsync.base import Animator
from presence.media import INPUT_SAMPLE_RATE, AudioChunk, InputAudio
from presence.protocol.events import (
    ErrorBody,
    GestureBody,
    InterruptBody,
    MetricsBody,
    ServerEvent,
    TranscriptBody,
    TurnBody,
)
from presence.protocol.frames import AudioIn, AudioOut, Event, Frame, Ping, Pong
from presence.protocol.hello import Agreement
from presence.session.gestures import GestureEvent, Gestures
from presence.session.inbound import Inbound, VadWindow
from presence.session.outbound import ReplyStream, WeightMapper, identity_weights
from presence.session.records import TurnRecord
from presence.session.replies import OUTCOME, Move, Reply, ReplyState
from presence.session.timeline import OutputTimeline
from presence.session.turn_metrics import TurnLog
from presence.session.turns import Signal, Transition, TurnConfig, TurnState, TurnTaker


@dataclass(frozen=True, slots=True)
class SessionConfig:
    output_sample_rate: int = 24_000
    frame_ms: int = 20
    max_lead_ms: int = 1000
    held_outputs_limit: int = 2000  # engine outputs buffered for an unconfirmed turn
    ready_outputs_limit: int = 256
    tick_ms: int = 32
    reply_timeout_s: float = 30.0  # a confirmed turn whose reply has not ended by then fails
    silence_fill_margin_ms: int = 60  # fill suppressed silence this far behind the wall clock
    turns: TurnConfig = field(default_factory=TurnConfig)


# ------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Send:
    """Hand a frame to the transport (never blocks; the transport bounds its queue)."""

    frame: Frame


@dataclass(frozen=True, slots=True)
class PushAudio:
    audio: InputAudio


@dataclass(frozen=True, slots=True)
class TellEngine:
    """``engine.turn_event``; with ``ack``, report back through ``on_engine_told``."""

    event: TurnEvent
    ack: bool = False


@dataclass(frozen=True, slots=True)
class InterruptEngine:
    interrupt: Interrupt


@dataclass(frozen=True, slots=True)
class PublishTurn:
    """A turn ended: its record goes to the metrics observer."""

    record: TurnRecord


@dataclass(frozen=True, slots=True)
class Fail:
    """The engine cannot go on: the transport closes with 1011 and this message."""

    message: str


Action: TypeAlias = Send | PushAudio | TellEngine | InterruptEngine | PublishTurn | Fail
ENGINE_ACTIONS = (PushAudio, TellEngine, InterruptEngine)


class SessionCore:
    """The session's state and rules. Every method is synchronous and returns its actions."""

    def __init__(
        self,
        agreement: Agreement,
        vad: VoiceActivityDetector,
        make_animator: Callable[[], Animator],
        now: float,
        config: SessionConfig | None = None,
        map_weights: WeightMapper = identity_weights,
    ) -> None:
        self.agreement = agreement
        self.config = config or SessionConfig()
        self.make_animator = make_animator
        self.map_weights = map_weights
        self.inbound = Inbound(agreement.audio_in, vad)
        self.turns = TurnTaker(self.config.turns)
        self.turn_log = TurnLog()
        # Seeded per session: blinks look natural but a session replays identically in tests.
        self.gestures = Gestures(random.Random(agreement.session_id))
        self.timeline = OutputTimeline(self.config.output_sample_rate, now)
        self.records: dict[int, TurnRecord] = {}
        self.finished_records: list[TurnRecord] = []
        self.replies: dict[int, Reply] = {}  # turn → its current reply (terminal ones absorb)
        self.ready: deque[tuple[Reply | None, EngineOutput]] = deque()  # released, not yet sent
        self.responding_turn: int | None = None  # confirmed by the turn machine
        self.released = False  # ... and the engine has heard it: its replies flow
        self.reply_deadline: float | None = None  # the responding turn's reply timeout
        self._wire_anchor: tuple[int, float] | None = None  # (input sample, arrival time)
        self._last_speech_frame_at: float | None = None
        self._playback_report: tuple[int, float] | None = None  # (heard_until sample, arrival)

    # ----------------------------------------------------------------- inputs

    def on_frame(self, frame: Frame, now: float) -> list[Action]:
        """One decoded frame from the client (after the hello)."""
        out: list[Action] = []
        match frame:
            case AudioIn():
                audio, windows = self.inbound.push(frame.data, frame.timestamp, now)
                self._wire_anchor = (self.inbound.position, now)
                out += [PushAudio(chunk) for chunk in audio]
                for window in windows:
                    if window.probability >= self.config.turns.speech_threshold:
                        self._last_speech_frame_at = now
                    out += self._on_window(window, now)
            case Ping():
                now_us = int(now * 1_000_000)
                out.append(Send(Pong(frame.timestamp, now_us, timestamp=now_us)))
            case Pong():
                pass  # the server does not ping yet; tolerate unsolicited pongs
            case Event():
                if frame.body.get("type") == "playback":
                    heard = frame.body.get("heard_until")
                    if isinstance(heard, int) and not isinstance(heard, bool):
                        self._playback_report = (heard, now)
            case _:  # the connection's direction table makes anything else impossible
                raise AssertionError(f"unexpected frame {type(frame).__name__}")
        return out

    def on_engine_output(self, item: EngineOutput, now: float) -> list[Action]:
        """One item from the engine's output stream: held, queued for the wire, or sent."""
        if isinstance(item, TurnTaken):
            # The engine's own turn detection answered: confirm now, not at our rule.
            return self._apply(self.turns.engine_took_turn(item.turn_id, self.inbound.position), now)
        if isinstance(item, EngineError):
            if item.fatal:  # the session ends now: say why before anything else
                return self._emit(None, item, now)
            self.ready.append((None, item))  # errors pass any hold, in order with the reply
            return []
        if isinstance(item, Transcript) and item.role == "user":
            if item.until_sample is not None and item.turn_id == self.turns.turn_id:
                self.turns.on_transcript(item.text, item.until_sample)  # the predictor's words
            # What the user said goes out at once: queued behind a released reply it would
            # trail the whole reply, and arrive after the turn's record was closed.
            return self._emit(None, item, now)
        if isinstance(item, ReplyEnd) and item.reason == "cancelled":
            return self._retract(item.turn_id, now)
        reply = self._reply_for(item.turn_id)
        if reply is None or not reply.open:
            return []  # stale: a reply already cut, dropped, ended or timed out
        if isinstance(item, AudioChunk):
            record = self._record(item.turn_id)
            if record.engine_first_audio_s is None:
                record.engine_first_audio_s = now
                self._mark(item.turn_id, "engine_first_audio", now)
        if isinstance(item, Transcript):  # the agent's words: the lips align them to its audio
            reply.text = (item.text, item.final)
            if reply.stream is not None:
                reply.stream.push_text(item.text, item.final)
        if reply.state is ReplyState.HELD:
            reply.held.append(item)
        else:
            self.ready.append((reply, item))
        return []

    def on_engine_told(self, event: TurnEvent, now: float) -> list[Action]:
        """The engine returned from ``turn_event(event)`` (a ``TellEngine(ack=True)``)."""
        turn_id = event.turn_id
        reply = self.replies.get(turn_id)
        match event.kind:
            case TurnEventKind.TURN_CONFIRMED:
                if self.responding_turn != turn_id:
                    return []  # the user went on (or barged in) while the engine was told
                self.released = True
                self.reply_deadline = now + self.config.reply_timeout_s
                if reply is not None and reply.state is ReplyState.HELD:
                    reply.move(Move.CONFIRM)
                    self.ready.extend((reply, held) for held in reply.held)
                    reply.held.clear()
            case TurnEventKind.TURN_ABANDONED | TurnEventKind.TURN_RESUMED:
                # The engine dropped that reply's queue: what comes next is a new reply.
                if reply is not None and reply.state in (ReplyState.ABANDONED, ReplyState.YIELDED):
                    del self.replies[turn_id]
        return []

    def on_tick(self, now: float) -> list[Action]:
        """Time passed: fill suppressed silence, send look-ahead animation, fire deadlines."""
        out: list[Action] = []
        if self.reply_deadline is not None and now >= self.reply_deadline:
            out += self._reply_timed_out(now)
        for reply in list(self.replies.values()):
            if reply.played_out_at is not None and now >= reply.played_out_at and reply.live:
                out += self._played_out(reply, now)
        now_sample = self.timeline.now_sample(now)
        for reply in self.replies.values():
            if reply.state is ReplyState.PLAYING and reply.stream is not None:
                frames = reply.stream.poll(now_sample)
                if frames:
                    out += self._send_frames(reply, frames, now)
        out += self._fill_silence(now)
        return out

    def take_ready(self, now: float) -> list[Action]:
        """Released outputs → frames, in order, until one audio chunk went out or the pace
        stops it (audio at most ``max_lead_ms`` ahead of real time). One chunk a call: the
        adapter lets the transport write it before the next is framed and animated."""
        out: list[Action] = []
        while self.ready:
            reply, item = self.ready[0]
            if reply is not None and not reply.open:
                self.ready.popleft()  # cut, retracted, yielded or timed out while it waited
                continue
            if isinstance(item, AudioChunk):
                if self._pace_wait_s(now) > 0:
                    break
                self.ready.popleft()
                assert reply is not None
                out += self._emit_audio(reply, item, now)
                break
            self.ready.popleft()
            out += self._emit(reply, item, now)
        return out

    # ----------------------------------------------------------------- what the adapter asks

    def next_deadline(self, now: float) -> float | None:
        """The earliest moment ``on_tick``/``take_ready`` have something to do, if any."""
        times = [r.played_out_at for r in self.replies.values() if r.played_out_at is not None and r.live]
        if self.reply_deadline is not None:
            times.append(self.reply_deadline)
        if self.ready:
            wait = self._pace_wait_s(now) if isinstance(self.ready[0][1], AudioChunk) else 0.0
            times.append(now + max(0.0, wait))
        return min(times) if times else None

    def accepting(self) -> bool:
        """Whether the engine's next output may be taken (backpressure on its stream)."""
        held = sum(len(reply.held) for reply in self.replies.values())
        return held < self.config.held_outputs_limit and len(self.ready) < self.config.ready_outputs_limit

    @property
    def state(self) -> TurnState:
        return self.turns.state

    # ----------------------------------------------------------------- turn-taking

    def _on_window(self, window: VadWindow, now: float) -> list[Action]:
        transitions = self.turns.on_vad(window.probability, window.t_samples, window.length, audio=window.samples)
        return self._apply(transitions, now)

    def _fill_silence(self, now: float) -> list[Action]:
        """Advance the input timeline through suppressed silence, so pauses are still counted."""
        if self._wire_anchor is None:
            return []
        sample, at = self._wire_anchor
        margin = self.config.silence_fill_margin_ms * INPUT_SAMPLE_RATE // 1000
        target = sample + int((now - at) * INPUT_SAMPLE_RATE) - margin
        if target <= self.inbound.position:
            return []
        audio, windows = self.inbound.advance_to(target)
        out: list[Action] = [PushAudio(chunk) for chunk in audio]
        for window in windows:
            out += self._on_window(window, now)
        out += [self._gesture(gesture) for gesture in self.gestures.poll(self.inbound.position)]
        return out

    def _apply(self, transitions: list[Transition], now: float) -> list[Action]:
        out: list[Action] = []
        self.turn_log.observe(transitions)
        out += [self._gesture(gesture) for gesture in self.gestures.on_transitions(transitions)]
        for transition in transitions:
            out.append(self._turn_event(transition))
            if transition.signal is Signal.BARGE_IN:
                out += self._barge_in(now)
            if transition.signal is Signal.USER_RESUMED:
                out += self._yield_turn(transition, now)
                continue
            record = self._record(transition.turn_id)
            event = transition.engine_event
            if transition.signal is Signal.SILENCE:
                record.pause_detected_s = now
                record.speech_end_sample = transition.t_samples
                record.last_speech_received_s = self._last_speech_frame_at or now
            if event is None:
                continue
            match event.kind:
                case TurnEventKind.USER_STARTED:
                    record.speech_start_sample = event.input_sample
                case TurnEventKind.USER_PAUSED:
                    record.speculation_started_s = now
                    record.engine_first_audio_s = None
                case TurnEventKind.TURN_ABANDONED:
                    record.abandoned_speculations += 1
                    record.speculation_started_s = None
                    record.engine_first_audio_s = None
                    # A placeholder when the engine sent nothing yet: whatever it sends before
                    # it returns belongs to the dropped speculation.
                    abandoned = self._reply(event.turn_id)
                    abandoned.held.clear()
                    abandoned.move(Move.ABANDON)
                    out.append(TellEngine(event, ack=True))
                    continue
                case TurnEventKind.TURN_CONFIRMED:
                    record.turn_confirmed_s = now
                    record.turn_confirmed_sample = event.input_sample
                    self._mark(event.turn_id, "turn_confirmed", now)
                    self.responding_turn = event.turn_id
                    self.released = False
                    self._reply(event.turn_id)  # held from now on, until the engine heard it
                    # The engine hears of the confirmation first: if it retracts its speculation
                    # now, the retraction usually arrives before anything held is released.
                    out.append(TellEngine(event, ack=True))
                    continue
            out.append(TellEngine(event))
        return out

    def _barge_in(self, now: float) -> list[Action]:
        """The user spoke over the reply: cut it where the user is hearing it now."""
        turn_id = self.responding_turn
        if turn_id is None:
            return []
        record = self._record(turn_id)
        record.interrupted = True
        out, heard, heard_engine = self._stop_reply(turn_id, now, Move.BARGE_IN)
        record.heard_samples = heard
        out.append(InterruptEngine(Interrupt(turn_id, heard_engine)))
        out += self._finish_record(turn_id, now, OUTCOME[ReplyState.CUT])
        return out

    def _yield_turn(self, transition: Transition, now: float) -> list[Action]:
        """The user spoke again right after their turn was confirmed: the release was early.

        Not a barge-in (the user never yielded the floor): the reply stops where it is being
        heard (the client fades it out and drops what it holds), the engine is told what was
        heard and that the same turn goes on, and the turn's next confirmation releases a reply
        to all of it.
        """
        turn_id = transition.turn_id
        record = self._record(turn_id)
        record.yields += 1
        out, heard, heard_engine = self._stop_reply(turn_id, now, Move.USER_RESUMED, reason="yield")
        record.yield_heard_samples = (record.yield_heard_samples or 0) + heard
        assert transition.engine_event is not None
        out += [InterruptEngine(Interrupt(turn_id, heard_engine)), TellEngine(transition.engine_event, ack=True)]
        record.turn_confirmed_s = None
        record.engine_first_audio_s = None
        record.first_audio_sent_s = None
        record.first_animation_sent_s = None
        return out

    def _stop_reply(
        self, turn_id: int, now: float, move: Move, reason: Literal["yield"] | None = None
    ) -> tuple[list[Action], int, int]:
        """Stop the responding turn's reply where the user hears it: the timeline cut there and
        the client told (``interrupt``). Returns the actions and the samples heard, at the
        output rate and at the engine's rate."""
        self.responding_turn = None
        self.released = False
        self.reply_deadline = None
        reply = self._reply(turn_id)
        stream = reply.stream
        heard = heard_engine = 0
        if stream is not None:
            cut_at = self._cut_where_heard(stream, now)
            heard = cut_at - stream.start_sample
            stream.cut()
            engine_rate = stream.source_rate or self.config.output_sample_rate
            heard_engine = heard * engine_rate // self.config.output_sample_rate
        else:
            cut_at = self.timeline.now_sample(now)
        reply.held.clear()
        reply.move(move)
        body = InterruptBody(type="interrupt", turn_id=turn_id, cut_at=cut_at)
        if reason is not None:
            body["reason"] = reason
        return [self._event(body)], heard, heard_engine

    def _retract(self, turn_id: int, now: float) -> list[Action]:
        """The engine withdrew what it produced so far for this turn (a redone speculation)."""
        reply = self.replies.get(turn_id)
        if reply is None or not reply.allows(Move.RETRACT):
            return []  # nothing open to withdraw (stale, or already ending)
        reply.move(Move.RETRACT)
        del self.replies[turn_id]  # what follows is a new reply to the same turn
        record = self.records.get(turn_id)
        if record is not None:
            record.engine_first_audio_s = None
        stream = reply.stream
        if stream is None:
            return []
        stream.cut()
        if not stream.sent_audio_frames:
            return []
        # Already on its way: tell the client to drop it from where it is being heard.
        cut_at = self._cut_where_heard(stream, now)
        return [self._event(InterruptBody(type="interrupt", turn_id=turn_id, cut_at=cut_at, reason="retracted"))]

    def _reply_timed_out(self, now: float) -> list[Action]:
        """The engine never finished the reply: end the turn with an error, keep the session."""
        self.reply_deadline = None
        turn_id = self.responding_turn
        if turn_id is None:
            return []
        reply = self._reply(turn_id)
        if not reply.allows(Move.TIMEOUT):
            return []
        message = f"the engine did not finish its reply within {self.config.reply_timeout_s:g} s"
        self._record(turn_id).error = message
        out = [self._event(ErrorBody(type="error", code="engine_timeout", message=message, turn_id=turn_id))]
        out += self._end_reply(reply, Move.TIMEOUT, now)
        out.append(InterruptEngine(Interrupt(turn_id, 0)))
        return out

    def _played_out(self, reply: Reply, now: float) -> list[Action]:
        reply.played_out_at = None
        reply.move(Move.PLAYED_OUT)
        out: list[Action] = []
        if self.responding_turn == reply.turn_id:
            self.responding_turn = None
            self.released = False
            transitions = self.turns.reply_done(self.inbound.position)
            self.turn_log.observe(transitions)
            for transition in transitions:
                out.append(self._turn_event(transition))
        out += self._finish_record(reply.turn_id, now, OUTCOME[reply.state])
        return out

    # ----------------------------------------------------------------- replies

    def _reply(self, turn_id: int) -> Reply:
        """The turn's current reply, opened (held, or released once the engine heard the
        confirmation) when there is none."""
        reply = self.replies.get(turn_id)
        if reply is None:
            reply = self.replies[turn_id] = Reply(turn_id)
            if self.released and turn_id == self.responding_turn:
                reply.move(Move.CONFIRM)
            self._forget_old_replies()
        return reply

    def _reply_for(self, turn_id: int) -> Reply | None:
        """The reply an engine output belongs to; None for a turn long gone."""
        if turn_id in self.replies or turn_id in (self.turns.turn_id, self.responding_turn):
            return self._reply(turn_id)
        return None

    def _forget_old_replies(self) -> None:
        """Turn ids only grow: keep the current turns' replies and the last few ended ones."""
        if len(self.replies) <= 8:
            return
        keep = sorted(self.replies)[-4:]
        for turn_id in list(self.replies):
            if turn_id not in keep and not self.replies[turn_id].live and turn_id != self.turns.turn_id:
                del self.replies[turn_id]

    def _stream(self, reply: Reply, now: float) -> ReplyStream:
        if reply.stream is None:
            start = self.timeline.place(now)
            reply.stream = ReplyStream(
                reply.turn_id,
                start,
                self.config.output_sample_rate,
                self.make_animator(),
                self.agreement.weight_set,
                self.config.frame_ms,
                self.map_weights,
                self.agreement.audio_out.codec,
                expressions=self.agreement.expressions,  # expression cues, when negotiated
            )
            self._record(reply.turn_id).reply_start_sample = start
            if reply.text is not None:  # the text came before the audio
                reply.stream.push_text(*reply.text)
        return reply.stream

    def _emit_audio(self, reply: Reply, chunk: AudioChunk, now: float) -> list[Action]:
        reply.move(Move.AUDIO)
        stream = self._stream(reply, now)
        return self._send_frames(reply, stream.push(chunk) + stream.poll(self.timeline.now_sample(now)), now)

    def _emit(self, reply: Reply | None, item: EngineOutput, now: float) -> list[Action]:
        match item:
            case Transcript():
                record = self.records.get(item.turn_id)
                if record is not None and item.final:
                    if item.role == "user":
                        record.user_text = item.text
                    else:
                        record.agent_text = item.text
                role: Literal["user", "agent"] = "user" if item.role == "user" else "agent"
                body = TranscriptBody(
                    type="transcript", role=role, text=item.text, final=item.final, turn_id=item.turn_id
                )
                out: list[Action] = [self._event(body)]
                if role == "user" and item.final and self.agreement.expressions:  # the face mirrors the user
                    mirrored = mirror_event(item.text, item.turn_id)
                    if mirrored is not None:
                        out.append(Send(Event(mirrored)))
                return out
            case GestureHint():
                stream = reply.stream if reply is not None else None
                at = stream.start_sample + item.offset_samples if stream is not None else None
                gesture = GestureBody(
                    type="gesture", name=item.name, at=at, turn_id=item.turn_id, intensity=item.intensity
                )
                return [self._event(gesture)]
            case ReplyEnd():
                assert reply is not None
                return self._end_reply(reply, Move.END_ERROR if item.reason == "error" else Move.END, now)
            case EngineError():
                error = ErrorBody(type="error", code=item.code, message=item.message, turn_id=item.turn_id)
                out = [self._event(error)]
                record = self.records.get(item.turn_id) if item.turn_id is not None else None
                if record is not None:  # still open: the turn's outcome will say "error"
                    record.error = record.error or item.message
                if item.fatal:
                    out.append(Fail(item.message))
                return out
        raise AssertionError(f"unexpected engine output {type(item).__name__}")

    def _end_reply(self, reply: Reply, move: Move, now: float) -> list[Action]:
        """No more output for this reply: send its last frames, then let it play out."""
        record = self._record(reply.turn_id)
        if move is Move.END_ERROR and record.error is None:
            record.error = "engine ended the reply with an error"
        stream = self._stream(reply, now)  # an empty reply still closes its segment
        reply.move(move)
        out = self._send_frames(reply, stream.finish(), now)
        record.animation = stream.animation_report or None
        record.reply_end_sample = stream.end_sample
        if self.responding_turn == reply.turn_id:
            self.reply_deadline = None
            remaining_s = max(0.0, (stream.end_sample - self.timeline.now_sample(now)) / self.config.output_sample_rate)
            reply.played_out_at = now + remaining_s
        else:
            reply.played_out_at = now
        return out

    def _send_frames(self, reply: Reply, frames: list[Frame], now: float) -> list[Action]:
        """Send one reply's frames; stamp the turn's first audio and animation frames sent."""
        stream = reply.stream
        assert stream is not None
        record = self._record(reply.turn_id)
        # An empty reply's end-of-segment frame is not "first audio": only frames with sound count.
        if record.first_audio_sent_s is None and any(isinstance(f, AudioOut) and f.data for f in frames):
            record.first_audio_sent_s = now
            self._mark(reply.turn_id, "first_audio_sent", now)
            self.gestures.reply_started(reply.turn_id)
        if stream.sent_animation_frames and record.first_animation_sent_s is None:
            record.first_animation_sent_s = now
            self._mark(reply.turn_id, "first_animation_sent", now)
        self.timeline.cursor = max(self.timeline.cursor, stream.end_sample)
        return [Send(frame) for frame in frames]

    # ----------------------------------------------------------------- records and helpers

    def _record(self, turn_id: int) -> TurnRecord:
        record = self.records.get(turn_id)
        if record is None:
            record = self.records[turn_id] = TurnRecord(turn_id)
        return record

    def _mark(self, turn_id: int, name: str, now: float) -> None:
        """A wall-clock instant for the turn's endpoint marks (``after_confirm_ms``)."""
        marks = self.turn_log.open.get(turn_id)
        if marks is not None:
            marks.mark_s(name, now)

    def _finish_record(self, turn_id: int, now: float, outcome: str) -> list[Action]:
        record = self.records.pop(turn_id, None)
        if record is None:
            return []
        record.reply_end_s = record.reply_end_s or now
        record.outcome = "error" if outcome == "done" and record.error else outcome
        record.marks = self.turn_log.finish(turn_id)
        self.finished_records.append(record)
        del self.finished_records[:-100]
        return [self._event(cast(MetricsBody, record.to_json())), PublishTurn(record)]

    def _cut_where_heard(self, stream: ReplyStream, now: float) -> int:
        """Cut the timeline where the user hears this reply now (within the reply); returns it."""
        cut_at = min(max(self._heard_position(now), stream.start_sample), stream.end_sample)
        self.timeline.cut(cut_at)
        return cut_at

    def _heard_position(self, now: float) -> int:
        """Timeline sample the user hears now: the client's report, advanced by elapsed time,
        or the wall clock when the client does not report."""
        if self._playback_report is not None:
            heard, at = self._playback_report
            return heard + int((now - at) * self.config.output_sample_rate)
        return self.timeline.now_sample(now)

    def _pace_wait_s(self, now: float) -> float:
        return self.timeline.lead_s(now) - self.config.max_lead_ms / 1000

    def _gesture(self, gesture: GestureEvent) -> Action:
        return self._event(gesture.to_json())  # listening cues: ``at`` is null, they play now

    @staticmethod
    def _turn_event(transition: Transition) -> Action:
        return SessionCore._event(TurnBody(type="turn", state=transition.state.value, turn_id=transition.turn_id))

    @staticmethod
    def _event(body: ServerEvent) -> Action:
        return Send(Event(dict(body)))
