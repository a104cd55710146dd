"""The engine interface: how a session talks to a reasoning engine, whichever one it is.

In: user audio (16 kHz mono float32 with input-timeline stamps), turn events, interrupts.
Out: one async stream of typed outputs (audio chunks with optional phoneme timings,
transcripts, gesture hints, end of reply, errors). Adding an engine never touches the session.

Replies are keyed by ``turn_id``. A reply may start speculatively at ``USER_PAUSED``; the
session holds its output until ``TURN_CONFIRMED``. On ``TURN_ABANDONED`` the engine cancels
the speculation *before* ``turn_event`` returns: from then on nothing of it may be emitted
(purge queued outputs too). The user's turn goes on under the same ``turn_id``; a later
``USER_PAUSED`` for it starts a fresh speculation over everything heard so far.

``TURN_RESUMED`` follows an early release: the user spoke again right after the turn was
confirmed, so they had not finished. The session has already sent ``Interrupt`` with what was
heard (stop the reply, remember only that); the engine keeps listening to the same turn, and
its next reply answers everything the user said in it.

An engine may also drop a speculation on its own, e.g. when the final transcript at
``TURN_CONFIRMED`` differs from the partial the speculation used: it emits
``ReplyEnd(turn_id, "cancelled")``, which retracts everything it emitted for that turn
before (the session discards it, or cuts it if already sent), and then the new reply.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeAlias

from presence.media import AudioChunk, InputAudio

log = logging.getLogger(__name__)


class TurnEventKind(Enum):
    USER_STARTED = "user_started"  # speech began (a new turn, or the same turn resumed)
    USER_PAUSED = "user_paused"  # a pause long enough to speculate; reply may start, held
    TURN_CONFIRMED = "turn_confirmed"  # the user's turn is over; the reply is released
    TURN_ABANDONED = "turn_abandoned"  # the user went on: drop the speculative reply
    TURN_RESUMED = "turn_resumed"  # the reply was released too early: the user goes on, same turn


@dataclass(frozen=True, slots=True)
class TurnEvent:
    kind: TurnEventKind
    turn_id: int
    input_sample: int  # where on the input timeline the session decided this


@dataclass(frozen=True, slots=True)
class Interrupt:
    """The user barged in: stop ``turn_id``'s reply. ``heard_samples`` of it (at the engine's
    output rate, counted from the reply's first sample) reached the user's ears."""

    turn_id: int
    heard_samples: int


@dataclass(frozen=True, slots=True)
class Transcript:
    role: str  # "user" | "agent"
    text: str
    final: bool
    turn_id: int
    # User transcripts: the input-timeline sample the recogniser had heard up to. The predictor
    # rule trusts words only once they cover the speech before the pause (docs/turn-taking.md).
    until_sample: int | None = None


@dataclass(frozen=True, slots=True)
class GestureHint:
    """An engine's hint for the avatar (e.g. ``"smile"``, ``"nod"``), at an offset into the reply."""

    turn_id: int
    name: str
    offset_samples: int = 0
    intensity: float = 1.0


@dataclass(frozen=True, slots=True)
class ReplyEnd:
    """No more output for ``turn_id``; ``reason`` is ``"done"``, ``"interrupted"`` or ``"error"``.

    ``"cancelled"`` is different: it retracts what came before for the turn, and more may follow
    (see the module docstring)."""

    turn_id: int
    reason: str = "done"


@dataclass(frozen=True, slots=True)
class TurnTaken:
    """The engine decided by itself that the user's turn ``turn_id`` is over and is answering
    it (a cloud model running its own turn detection). The session confirms the turn at once
    instead of waiting for its own confirmation rule; claims for stale turns are ignored."""

    turn_id: int


@dataclass(frozen=True, slots=True)
class EngineError:
    """A failure inside the engine. ``fatal`` means the engine session cannot continue."""

    message: str
    turn_id: int | None = None
    fatal: bool = False
    code: str = "engine_error"


EngineOutput: TypeAlias = AudioChunk | Transcript | GestureHint | ReplyEnd | TurnTaken | EngineError


async def until_closed(queue: asyncio.Queue[EngineOutput | None]) -> AsyncIterator[EngineOutput]:
    """An engine session's ``outputs()`` from its queue, up to the ``None`` that ``close`` puts there."""
    while (item := await queue.get()) is not None:
        yield item


def start_reply_task(
    turn_id: int,
    work: Coroutine[object, object, None],
    emit: Callable[[EngineOutput], Awaitable[None]],
    name: str,
) -> asyncio.Task[None]:
    """Run one reply as a task whose crash ends that turn at once with an error event.

    Without this, an exception in a reply task is only noticed when the task is collected
    ("Task exception was never retrieved") and the user waits for the session's reply
    timeout. The message names the exception type only: internals never reach the client.
    """

    async def guarded() -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("engine reply for turn %d failed", turn_id, exc_info=exc)
            await emit(EngineError(f"the engine failed while replying ({type(exc).__name__})", turn_id))
            await emit(ReplyEnd(turn_id, "error"))

    return asyncio.create_task(guarded(), name=name)


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """Per-session engine settings chosen at connect time."""

    session_id: str
    persona: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


class EngineSession(abc.ABC):
    """One conversation with an engine. Methods are called from the session's event loop and
    must return quickly; heavy work belongs in threads or processes the engine owns."""

    @abc.abstractmethod
    async def push_audio(self, audio: InputAudio) -> None:
        """Feed user audio as it arrives (continuous, including silence the client sent)."""

    @abc.abstractmethod
    async def turn_event(self, event: TurnEvent) -> None:
        """React to the session's turn-taking decisions."""

    @abc.abstractmethod
    async def interrupt(self, interrupt: Interrupt) -> None:
        """Stop the reply now and remember only what was heard."""

    @abc.abstractmethod
    def outputs(self) -> AsyncIterator[EngineOutput]:
        """The single stream of outputs; ends when the engine session closes."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release everything; idempotent; after it, ``outputs()`` ends."""


class Engine(abc.ABC):
    """A factory of engine sessions plus anything shared between them (loaded models)."""

    name: str = "engine"
    #: True when the engine hears audio itself and may detect turns (cloud speech models).
    hears_audio: bool = False
    #: True when its audio chunks carry phoneme marks, so lips can follow them exactly;
    #: otherwise the session infers visemes from the audio.
    phoneme_timings: bool = False

    async def start(self) -> None:
        """Load shared resources (models); called once before the first session."""
        return None

    async def check(self) -> None:
        """Ask the service, once at ``presence serve`` start-up, whether the configuration can
        work (e.g. that the model exists); raise ``EngineUnavailable`` with the reason if not."""
        return None

    @abc.abstractmethod
    async def open_session(self, options: SessionOptions) -> EngineSession:
        """Open one conversation."""

    async def stop(self) -> None:
        """Release shared resources; called at server shutdown."""
        return None
