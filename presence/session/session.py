"""One conversation: owns the connection's state, the media clock and the engine session.

Inbound frames arrive through ``handle``; the session decodes audio, runs VAD and turn-taking,
tells the engine, and turns the engine's outputs into timeline-stamped frames handed to
``send`` (a non-blocking, bounded queue owned by the transport). Two owned tasks run per
session: the pump (engine outputs → held or ready) and the sender (ready → wire, paced so
audio runs at most ``max_lead_ms`` ahead of real time). ``close`` cancels both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from presence.audio.vad import VoiceActivityDetector
from presence.engines.base import (
    INPUT_SAMPLE_RATE,
    AudioChunk,
    EngineError,
    EngineOutput,
    EngineSession,
    GestureHint,
    Interrupt,
    ReplyEnd,
    Transcript,
    TurnEvent,
    TurnEventKind,
    TurnTaken,
)
from presence.expression.mirror import mirror_event  # issue 18
from presence.lipsync.base import Animator
from presence.protocol.frames import AudioIn, AudioOut, Event, Frame, Ping, Pong
from presence.protocol.hello import Agreement
from presence.session.gestures import GestureEvent, Gestures
from presence.session.inbound import Inbound, VadWindow
from presence.session.outbound import ReplyStream, WeightMapper, identity_weights
from presence.session.records import TurnRecord
from presence.session.timeline import OutputTimeline
from presence.session.turn_metrics import TurnLog
from presence.session.turns import Signal, Transition, TurnConfig, TurnState, TurnTaker

log = logging.getLogger(__name__)

Send = Callable[[Frame], None]
TurnObserver = Callable[[TurnRecord], None]


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


def _turn_of(item: EngineOutput) -> int | None:
    return item.turn_id


class Session:
    def __init__(
        self,
        agreement: Agreement,
        engine: EngineSession,
        send: Send,
        vad: VoiceActivityDetector,
        make_animator: Callable[[], Animator],
        config: SessionConfig | None = None,
        map_weights: WeightMapper = identity_weights,
        clock: Callable[[], float] = time.monotonic,
        on_turn_end: TurnObserver | None = None,
    ) -> None:
        self.agreement = agreement
        self.engine = engine
        self.send = send
        self.config = config or SessionConfig()
        self.clock = clock
        self.make_animator = make_animator
        self.map_weights = map_weights
        self.on_turn_end = on_turn_end
        self.inbound = Inbound(agreement.audio_in, vad)
        self.turns = TurnTaker(self.config.turns)
        self.turn_log = TurnLog()
        # Seeded per session: blinks look natural but a session replays identically in tests.
        self.gestures = Gestures(random.Random(agreement.session_id))
        self.timeline = OutputTimeline(self.config.output_sample_rate, clock())
        self.records: dict[int, TurnRecord] = {}
        self.finished_records: list[TurnRecord] = []
        self._released: set[int] = set()
        self._dropped: set[int] = set()
        self._held: dict[int, list[EngineOutput]] = {}
        self._ready: deque[EngineOutput] = deque()
        self._ready_changed = asyncio.Event()
        self._space = asyncio.Event()
        self._streams: dict[int, ReplyStream] = {}
        self._reply_text: dict[int, tuple[str, bool]] = {}  # agent text so far, per turn
        self._reply_done_timer: asyncio.TimerHandle | None = None
        self._watchdogs: dict[int, asyncio.TimerHandle] = {}
        self._responding_turn: int | None = None
        self._last_wire_anchor: tuple[int, float] | None = None  # (input sample, arrival time)
        self._last_speech_frame_at: float | None = None
        self._playback_report: tuple[int, float] | None = None  # (heard_until sample, arrival)
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.fatal_error: str | None = None
        self.failed = asyncio.Event()  # set with fatal_error: the engine cannot go on

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._pump(), name=f"session-{self.agreement.session_id}-pump"),
            asyncio.create_task(self._sender(), name=f"session-{self.agreement.session_id}-sender"),
            asyncio.create_task(self._ticker(), name=f"session-{self.agreement.session_id}-ticker"),
        ]
        for task in self._tasks:
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """A session task must never die quietly: a failure ends the session (close 1011)."""
        if task.cancelled() or self._closed:
            return
        failure = task.exception()
        if failure is not None:
            log.error("session %s: %s failed", self.agreement.session_id, task.get_name(), exc_info=failure)
            self._fail(f"internal error in {task.get_name().rsplit('-', 1)[-1]}")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._reply_done_timer is not None:
            self._reply_done_timer.cancel()
        for watchdog in self._watchdogs.values():
            watchdog.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.engine.close()

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        return list(self._tasks)

    # ----------------------------------------------------------------- inbound

    async def handle(self, frame: Frame) -> None:
        """One decoded frame from the client (after the hello)."""
        now = self.clock()
        match frame:
            case AudioIn():
                audio, windows = self.inbound.push(frame.data, frame.timestamp, now)
                self._last_wire_anchor = (self.inbound.position, now)
                for chunk in audio:
                    await self.engine.push_audio(chunk)
                for window in windows:
                    if window.probability >= self.config.turns.speech_threshold:
                        self._last_speech_frame_at = now
                    await self._on_window(window, now)
            case Ping():
                now_us = int(now * 1_000_000)
                self.send(Pong(frame.timestamp, now_us, timestamp=now_us))
            case Pong():
                pass  # the server does not ping yet; tolerate unsolicited pongs
            case Event():
                self._on_client_event(frame.body, now)
            case _:  # the connection's direction table makes anything else impossible
                raise AssertionError(f"unexpected frame {type(frame).__name__}")

    def _on_client_event(self, body: dict[str, Any], now: float) -> None:
        if body.get("type") == "playback":
            heard = body.get("heard_until")
            if isinstance(heard, int) and not isinstance(heard, bool):
                self._playback_report = (heard, now)

    async def _ticker(self) -> None:
        """Advance the input timeline through suppressed silence, so pauses are still counted."""
        margin = self.config.silence_fill_margin_ms * INPUT_SAMPLE_RATE // 1000
        while True:
            await asyncio.sleep(self.config.tick_ms / 1000)
            self._poll_animation()
            if self._last_wire_anchor is None:
                continue
            sample, at = self._last_wire_anchor
            now = self.clock()
            target = sample + int((now - at) * INPUT_SAMPLE_RATE) - margin
            if target <= self.inbound.position:
                continue
            audio, windows = self.inbound.advance_to(target)
            for chunk in audio:
                await self.engine.push_audio(chunk)
            for window in windows:
                await self._on_window(window, now)
            for gesture in self.gestures.poll(self.inbound.position):
                self._gesture(gesture)

    # ----------------------------------------------------------------- turn-taking

    async def _on_window(self, window: VadWindow, now: float) -> None:
        transitions = self.turns.on_vad(window.probability, window.t_samples, window.length, audio=window.samples)
        await self._apply(transitions, now)

    def _gesture(self, gesture: GestureEvent) -> None:
        body = gesture.to_json()
        body["at"] = None  # listening cues play now; only reply-bound gestures carry a timeline position
        self._event(body)

    async def _apply(self, transitions: list[Transition], now: float) -> None:
        self.turn_log.observe(transitions)
        for gesture in self.gestures.on_transitions(transitions):
            self._gesture(gesture)
        for transition in transitions:
            self._event({"type": "turn", "state": transition.state.value, "turn_id": transition.turn_id})
            if transition.signal is Signal.BARGE_IN:
                await self._barge_in(now)
            if transition.signal is Signal.USER_RESUMED:
                await self._yield_turn(transition, now)
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
                    # Tell the engine first: once it returns nothing of the speculation is left
                    # in its queue, so whatever the pump took meanwhile is in _held, dropped here.
                    self._dropped.add(event.turn_id)
                    await self.engine.turn_event(event)
                    self._drop_turn(event.turn_id)
                    self._dropped.discard(event.turn_id)  # the same turn may speculate again
                    continue
                case TurnEventKind.TURN_CONFIRMED:
                    record.turn_confirmed_s = now
                    record.turn_confirmed_sample = event.input_sample
                    self._responding_turn = event.turn_id
                    self._watchdogs[event.turn_id] = asyncio.get_running_loop().call_later(
                        self.config.reply_timeout_s, self._reply_timed_out, event.turn_id
                    )
                    # The engine hears of the confirmation first: if it retracts its speculation
                    # now, the retraction usually arrives before anything held is released.
                    await self.engine.turn_event(event)
                    self._release(event.turn_id)
                    continue
            await self.engine.turn_event(event)

    def _record(self, turn_id: int) -> TurnRecord:
        record = self.records.get(turn_id)
        if record is None:
            record = self.records[turn_id] = TurnRecord(turn_id)
        return record

    def _release(self, turn_id: int) -> None:
        self._released.add(turn_id)
        held = self._held.pop(turn_id, [])
        self._ready.extend(held)
        self._ready_changed.set()
        self._space.set()

    def _retract(self, turn_id: int) -> None:
        """The engine withdrew what it produced so far for this turn (a redone speculation)."""
        self._held.pop(turn_id, None)
        self._purge_ready(turn_id)
        record = self.records.get(turn_id)
        if record is not None:
            record.engine_first_audio_s = None
        self._reply_text.pop(turn_id, None)
        stream = self._streams.pop(turn_id, None)
        if stream is None:
            return
        stream.cut()
        if stream.sent_audio_frames:
            # Already on its way: tell the client to drop it from where it is being heard.
            now = self.clock()
            cut_at = min(max(self._heard_position(now), stream.start_sample), stream.end_sample)
            self.timeline.cut(cut_at)
            self._event({"type": "interrupt", "turn_id": turn_id, "cut_at": cut_at, "reason": "retracted"})
        self._space.set()

    def _reply_timed_out(self, turn_id: int) -> None:
        """The engine never finished this reply: end the turn with an error, keep the session."""
        self._watchdogs.pop(turn_id, None)
        message = f"the engine did not finish its reply within {self.config.reply_timeout_s:g} s"
        self._ready.extend([EngineError(message, turn_id, code="engine_timeout"), ReplyEnd(turn_id, "error")])
        self._ready_changed.set()

    def _drop_turn(self, turn_id: int) -> None:
        self._dropped.add(turn_id)
        # Turn ids only grow; forget drops far behind so the set stays small.
        if len(self._dropped) > 256:
            newest = max(self._dropped)
            self._dropped = {t for t in self._dropped if t > newest - 128}
        self._released.discard(turn_id)
        self._held.pop(turn_id, None)
        self._reply_text.pop(turn_id, None)
        stream = self._streams.pop(turn_id, None)
        if stream is not None:
            stream.cut()
        self._space.set()

    async def _barge_in(self, now: float) -> None:
        """The user spoke over the reply: cut it where the user is hearing it now."""
        turn_id = self._responding_turn
        if turn_id is None:
            return
        record = self._record(turn_id)
        record.interrupted = True
        record.heard_samples, heard_engine = self._stop_reply(turn_id, now)
        await self.engine.interrupt(Interrupt(turn_id, heard_engine))
        self._drop_turn(turn_id)
        self._finish_record(turn_id, now)

    async def _yield_turn(self, transition: Transition, now: float) -> None:
        """The user spoke again right after their turn was confirmed: the release was early.

        Not a barge-in (the user never yielded the floor): the reply stops where it is being
        heard (the client fades it out and drops what it holds), the engine is told what was
        heard and that the same turn goes on, and the turn's next confirmation releases a reply
        to all of it.
        """
        turn_id = transition.turn_id
        record = self._record(turn_id)
        record.yields += 1
        heard, heard_engine = self._stop_reply(turn_id, now, reason="yield")
        record.yield_heard_samples = (record.yield_heard_samples or 0) + heard
        # As for an abandoned speculation: nothing the engine queued for this reply may go out,
        # and once the engine has returned, the same turn may produce a new reply.
        self._dropped.add(turn_id)
        await self.engine.interrupt(Interrupt(turn_id, heard_engine))
        assert transition.engine_event is not None
        await self.engine.turn_event(transition.engine_event)
        self._drop_turn(turn_id)
        # Released chunks still queued for the wire would open a new segment of the old reply.
        self._purge_ready(turn_id)
        self._dropped.discard(turn_id)
        record.turn_confirmed_s = None
        record.engine_first_audio_s = None
        record.first_audio_sent_s = None
        record.first_animation_sent_s = None

    def _stop_reply(self, turn_id: int, now: float, reason: str | None = None) -> tuple[int, int]:
        """Stop the responding turn's reply where the user hears it: its timers off, the
        timeline cut there, the client told (``interrupt``). Returns the samples heard, at the
        output rate and at the engine's rate."""
        self._responding_turn = None
        if self._reply_done_timer is not None:
            self._reply_done_timer.cancel()
            self._reply_done_timer = None
        watchdog = self._watchdogs.pop(turn_id, None)
        if watchdog is not None:
            watchdog.cancel()
        stream = self._streams.get(turn_id)
        heard = heard_engine = 0
        if stream is not None:
            cut_at = min(max(self._heard_position(now), stream.start_sample), stream.end_sample)
            heard = cut_at - stream.start_sample
            self.timeline.cut(cut_at)
            engine_rate = stream._source_rate or self.config.output_sample_rate
            heard_engine = heard * engine_rate // self.config.output_sample_rate
        else:
            cut_at = self.timeline.now_sample(now)
        body: dict[str, Any] = {"type": "interrupt", "turn_id": turn_id, "cut_at": cut_at}
        if reason is not None:
            body["reason"] = reason
        self._event(body)
        return heard, heard_engine

    def _purge_ready(self, turn_id: int) -> None:
        """Drop the turn's outputs waiting for the wire (errors excepted: they pass any hold)."""
        self._ready = deque(item for item in self._ready if item.turn_id != turn_id or self._passes_hold(item))

    def _heard_position(self, now: float) -> int:
        """Timeline sample the user hears now: the client's report, advanced by elapsed time,
        or the wall clock when the client does not report."""
        if self._playback_report is not None:
            heard, at = self._playback_report
            return heard + int((now - at) * self.config.output_sample_rate)
        return self.timeline.now_sample(now)

    def _reply_played_out(self, turn_id: int) -> None:
        self._reply_done_timer = None
        if self._responding_turn != turn_id:
            return
        self._responding_turn = None
        now = self.clock()
        transitions = self.turns.reply_done(self.inbound.position)
        self.turn_log.observe(transitions)
        for transition in transitions:
            self._event({"type": "turn", "state": transition.state.value, "turn_id": transition.turn_id})
        self._finish_record(turn_id, now)

    def _finish_record(self, turn_id: int, now: float) -> None:
        record = self.records.pop(turn_id, None)
        if record is None:
            return
        record.reply_end_s = record.reply_end_s or now
        record.marks = self.turn_log.finish(turn_id)
        self.finished_records.append(record)
        del self.finished_records[:-100]
        self._event(record.to_json())
        if self.on_turn_end is not None:
            self.on_turn_end(record)

    # ----------------------------------------------------------------- outbound

    async def _pump(self) -> None:
        """Engine outputs → held (unconfirmed turn) or ready (released)."""
        async for item in self.engine.outputs():
            if isinstance(item, TurnTaken):
                # The engine's own turn detection answered: confirm now, not at our rule.
                await self._apply(self.turns.engine_took_turn(item.turn_id, self.inbound.position), self.clock())
                continue
            turn_id = _turn_of(item)
            if isinstance(item, ReplyEnd) and item.reason == "cancelled":
                self._retract(item.turn_id)
                continue
            if isinstance(item, AudioChunk):
                record = self._record(item.turn_id) if item.turn_id not in self._dropped else None
                if record is not None and record.engine_first_audio_s is None:
                    record.engine_first_audio_s = self.clock()
            if turn_id is not None and turn_id in self._dropped:
                continue
            if isinstance(item, Transcript) and item.role == "agent":
                self._reply_text_arrived(item)
            if isinstance(item, Transcript) and item.role == "user":
                if item.until_sample is not None and item.turn_id == self.turns.turn_id:
                    self.turns.on_transcript(item.text, item.until_sample)  # the predictor's words
                # What the user said goes out at once: queued behind a released speculation it
                # would trail the whole reply, and arrive after the turn's record was closed.
                await self._emit(item)
                continue
            if turn_id is not None and turn_id not in self._released and not self._passes_hold(item):
                held = self._held.setdefault(turn_id, [])
                held.append(item)
                while len(held) >= self.config.held_outputs_limit and turn_id in self._held:
                    self._space.clear()
                    await self._space.wait()
                continue
            self._ready.append(item)
            self._ready_changed.set()
            while len(self._ready) >= self.config.ready_outputs_limit:
                self._space.clear()
                await self._space.wait()
        if not self._closed:
            self._fail(self.fatal_error or "engine session ended")

    def _reply_text_arrived(self, item: Transcript) -> None:
        """The lips align the reply's words to its audio: they get the text when it arrives,
        not when it comes out of the queue behind the audio paced ahead of it."""
        self._reply_text[item.turn_id] = (item.text, item.final)
        if item.turn_id in self._streams:
            self._streams[item.turn_id].push_text(item.text, item.final)

    @staticmethod
    def _passes_hold(item: EngineOutput) -> bool:
        """Errors are not part of the held reply (user transcripts never queue at all)."""
        return isinstance(item, EngineError)

    async def _sender(self) -> None:
        while True:
            while not self._ready:
                self._ready_changed.clear()
                await self._ready_changed.wait()
            item = self._ready.popleft()
            self._space.set()
            turn_id = _turn_of(item)
            if turn_id is not None and turn_id in self._dropped and not isinstance(item, EngineError):
                continue
            await self._emit(item)
            if isinstance(item, AudioChunk):
                # Let the transport write what this chunk produced before the next one is
                # framed and animated: a released reply arrives as a burst of held chunks, and
                # without this yield its first frame would wait on the socket for all of them.
                await asyncio.sleep(0)
            if isinstance(item, EngineError) and item.code == "engine_timeout" and item.turn_id is not None:
                await self.engine.interrupt(Interrupt(item.turn_id, 0))

    async def _emit(self, item: EngineOutput) -> None:
        match item:
            case AudioChunk():
                await self._pace()
                if item.turn_id in self._dropped or item.turn_id not in self._released:
                    return  # cut, retracted or yielded while this chunk waited for its pace
                stream = self._stream(item.turn_id)
                self._send_frames(stream, stream.push(item) + stream.poll(self.timeline.now_sample(self.clock())))
            case Transcript():
                record = self.records.get(item.turn_id)
                if record is not None and item.final:
                    if item.role == "user":
                        record.user_text = item.text
                    else:
                        record.agent_text = item.text
                self._event(
                    {
                        "type": "transcript",
                        "role": item.role,
                        "text": item.text,
                        "final": item.final,
                        "turn_id": item.turn_id,
                    }
                )
                if item.role == "user" and item.final and self.agreement.expressions:  # issue 18: mirror the user
                    mirrored = mirror_event(item.text, item.turn_id)  # issue 18
                    if mirrored is not None:  # issue 18
                        self._event(mirrored)  # issue 18
            case GestureHint():
                playing = self._streams.get(item.turn_id)
                at = playing.start_sample + item.offset_samples if playing is not None else None
                self._event(
                    {
                        "type": "gesture",
                        "name": item.name,
                        "at": at,
                        "intensity": item.intensity,
                        "turn_id": item.turn_id,
                    }
                )
            case ReplyEnd():
                self._end_reply(item.turn_id, item.reason)
            case EngineError():
                self._event({"type": "error", "code": item.code, "message": item.message, "turn_id": item.turn_id})
                if item.turn_id is not None:
                    self._record(item.turn_id).error = item.message
                if item.fatal:
                    self._fail(item.message)

    async def _pace(self) -> None:
        lead = self.timeline.lead_s(self.clock()) - self.config.max_lead_ms / 1000
        if lead > 0:
            await asyncio.sleep(lead)

    def _stream(self, turn_id: int) -> ReplyStream:
        stream = self._streams.get(turn_id)
        if stream is None:
            start = self.timeline.place(self.clock())
            stream = ReplyStream(
                turn_id,
                start,
                self.config.output_sample_rate,
                self.make_animator(),
                self.agreement.weight_set,
                self.config.frame_ms,
                self.map_weights,
                self.agreement.audio_out.codec,
                expressions=self.agreement.expressions,  # issue 18: expression cues, when negotiated
            )
            self._streams[turn_id] = stream
            self._record(turn_id).reply_start_sample = start
            if turn_id in self._reply_text:  # the text came before the audio
                stream.push_text(*self._reply_text[turn_id])
        return stream

    def _poll_animation(self) -> None:
        """Animation frames held for look-ahead go out before playback reaches them."""
        now_sample = self.timeline.now_sample(self.clock())
        for stream in list(self._streams.values()):
            frames = stream.poll(now_sample)
            if frames:
                self._send_frames(stream, frames)

    def _send_frames(self, stream: ReplyStream, frames: list[Frame]) -> None:
        """Send one reply's frames; stamp the turn's first audio and animation frames sent."""
        record = self._record(stream.turn_id)
        for frame in frames:
            self.send(frame)
        now = self.clock()
        # An empty reply's end-of-segment frame is not "first audio": only frames with sound count.
        if record.first_audio_sent_s is None and any(isinstance(f, AudioOut) and f.data for f in frames):
            record.first_audio_sent_s = now
            self.gestures.reply_started(stream.turn_id)
        if stream.sent_animation_frames and record.first_animation_sent_s is None:
            record.first_animation_sent_s = now
        self.timeline.cursor = max(self.timeline.cursor, stream.end_sample)

    def _end_reply(self, turn_id: int, reason: str) -> None:
        watchdog = self._watchdogs.pop(turn_id, None)
        if watchdog is not None:
            watchdog.cancel()
        if turn_id in self._dropped:  # already ended (e.g. timed out, then the engine caught up)
            return
        stream = self._streams.pop(turn_id, None)
        now = self.clock()
        record = self._record(turn_id)
        if stream is None:  # an empty reply: nothing to play
            stream = self._stream(turn_id)
            self._streams.pop(turn_id, None)
        self._send_frames(stream, stream.finish())
        self._reply_text.pop(turn_id, None)
        record.animation = stream.animation_report or None
        record.reply_end_sample = stream.end_sample
        if self._responding_turn == turn_id:
            remaining_s = max(0.0, (stream.end_sample - self.timeline.now_sample(now)) / self.config.output_sample_rate)
            loop = asyncio.get_running_loop()
            self._reply_done_timer = loop.call_later(remaining_s, self._reply_played_out, turn_id)
        else:
            self._finish_record(turn_id, now)
        if reason == "error" and record.error is None:
            record.error = "engine ended the reply with an error"
        self._dropped.add(turn_id)  # anything the engine still sends for this turn is stale

    def _fail(self, message: str) -> None:
        self.fatal_error = message
        self.failed.set()

    def _event(self, body: dict[str, Any]) -> None:
        self.send(Event(body))

    # ----------------------------------------------------------------- introspection

    @property
    def state(self) -> TurnState:
        return self.turns.state

    def engine_event_log(self) -> list[TurnEvent]:
        """For tests: what the engine was told, when the engine keeps a log."""
        events: list[TurnEvent] = getattr(self.engine, "events", [])
        return events
