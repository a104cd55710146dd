"""One conversation's I/O: the asyncio adapter around ``SessionCore``.

The core (core.py) decides everything and returns actions; this adapter is the only part
that knows about tasks, the clock, the engine's coroutines and the transport's ``send``. It
owns two tasks: the pump (engine outputs → core, with backpressure) and the clock (ticks,
deadlines, and released outputs → frames). ``handle`` is driven by the transport's reader.
Engine calls run one at a time, in the order the core asked for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from presence.audio.vad import VoiceActivityDetector
from presence.engines.base import EngineSession, TurnEvent
from presence.lipsync.base import Animator
from presence.protocol.frames import Frame
from presence.protocol.hello import Agreement
from presence.session.core import (
    ENGINE_ACTIONS,
    Action,
    Fail,
    InterruptEngine,
    PublishTurn,
    PushAudio,
    Send,
    SessionConfig,
    SessionCore,
    TellEngine,
)
from presence.session.outbound import WeightMapper, identity_weights
from presence.session.records import TurnRecord
from presence.session.turns import TurnState

__all__ = ["Session", "SessionConfig"]

log = logging.getLogger(__name__)

Send_ = Callable[[Frame], None]
TurnObserver = Callable[[TurnRecord], None]


class Session:
    def __init__(
        self,
        agreement: Agreement,
        engine: EngineSession,
        send: Send_,
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
        self.clock = clock
        self.on_turn_end = on_turn_end
        self.core = SessionCore(agreement, vad, make_animator, clock(), config, map_weights)
        self.config = self.core.config
        self._engine_lane = asyncio.Lock()  # engine calls in the order the core produced them
        self._wake = asyncio.Event()  # the core may have new work or a nearer deadline
        self._space = asyncio.Event()  # the core can take engine output again
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.fatal_error: str | None = None
        self.failed = asyncio.Event()  # set with fatal_error: the engine cannot go on

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        name = f"session-{self.agreement.session_id}"
        self._tasks = [
            asyncio.create_task(self._pump(), name=f"{name}-pump"),
            asyncio.create_task(self._clock(), name=f"{name}-clock"),
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
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.engine.close()

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        return list(self._tasks)

    # ----------------------------------------------------------------- inputs

    async def handle(self, frame: Frame) -> None:
        """One decoded frame from the client (after the hello)."""
        await self._run(self.core.on_frame(frame, self.clock()))

    async def _pump(self) -> None:
        """Engine outputs → the core; waits while the core holds as much as it may."""
        async for item in self.engine.outputs():
            await self._run(self.core.on_engine_output(item, self.clock()))
            while not self.core.accepting():
                self._space.clear()
                await self._space.wait()
        if not self._closed:
            self._fail(self.fatal_error or "engine session ended")

    async def _clock(self) -> None:
        """Ticks every ``tick_ms`` or at the core's next deadline, whichever is first; sends
        released outputs, yielding after each audio chunk so the transport writes it at once."""
        tick_s = self.config.tick_ms / 1000
        next_tick = self.clock()
        while True:
            now = self.clock()
            deadline = self.core.next_deadline(now)
            wait_s = min(next_tick, deadline if deadline is not None else next_tick) - now
            if wait_s > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait_s)
            now = self.clock()
            # A wake (a frame in, an output ready) needs only take_ready; the tick's work (silence
            # fill, look-ahead animation, timeouts) runs at its cadence or when a deadline is due.
            if now >= next_tick or (deadline is not None and now >= deadline):
                next_tick = now + tick_s
                await self._run(self.core.on_tick(now))
            while actions := self.core.take_ready(self.clock()):
                await self._run(actions)
                await asyncio.sleep(0)
            if self.core.accepting():
                self._space.set()

    # ----------------------------------------------------------------- actions

    async def _run(self, actions: list[Action]) -> None:
        """Perform the core's actions in order. Sends never wait; from the first engine call
        on, the rest runs in the engine lane, so engine calls keep the core's order."""
        for i, action in enumerate(actions):
            if isinstance(action, ENGINE_ACTIONS):
                async with self._engine_lane:
                    for rest in actions[i:]:
                        await self._perform(rest)
                break
            await self._perform(action)
        self._wake.set()

    async def _perform(self, action: Action) -> None:
        match action:
            case Send():
                self.send(action.frame)
            case PushAudio():
                await self.engine.push_audio(action.audio)
            case TellEngine():
                await self.engine.turn_event(action.event)
                if action.ack:  # already in the lane: its follow-ups run here, in order
                    for follow in self.core.on_engine_told(action.event, self.clock()):
                        await self._perform(follow)
            case InterruptEngine():
                await self.engine.interrupt(action.interrupt)
            case PublishTurn():
                if self.on_turn_end is not None:
                    self.on_turn_end(action.record)
            case Fail():
                self._fail(action.message)

    def _fail(self, message: str) -> None:
        self.fatal_error = message
        self.failed.set()

    # ----------------------------------------------------------------- introspection

    @property
    def state(self) -> TurnState:
        return self.core.state

    @property
    def records(self) -> dict[int, TurnRecord]:
        return self.core.records

    @property
    def finished_records(self) -> list[TurnRecord]:
        return self.core.finished_records

    def engine_event_log(self) -> list[TurnEvent]:
        """For tests: what the engine was told, when the engine keeps a log."""
        events: list[TurnEvent] = getattr(self.engine, "events", [])
        return events
