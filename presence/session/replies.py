"""A reply's life as one table: every legal move of one reply, and nothing else.

A reply is what the engine produces for one user turn, from its first output to the moment
the session is done with it. Before this table a reply's state was spread over five
collections, and two bugs (a chunk sent for a turn no longer released; a cut reply reopened
by chunks still queued) came from their disagreeing. Now the session asks the reply:
``open`` replies take engine output, ``live`` ones may still be heard, terminal ones absorb
whatever the engine still sends for them. docs/turn-taking.md is generated from ``MOVES``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from presence.engines.base import EngineOutput
from presence.session.outbound import ReplyStream


class ReplyState(Enum):
    HELD = "held"  # produced for a turn not yet confirmed (speculation): kept back
    RELEASED = "released"  # the turn is confirmed: outputs go to the wire, no audio yet
    PLAYING = "playing"  # audio went out
    FINISHING = "finishing"  # the engine ended it; what was sent is still playing
    FAILING = "failing"  # ended by an error or the reply timeout; what was sent still plays
    ENDED = "ended"  # played out: the turn is done
    FAILED = "failed"  # played out after an error: the turn is done, with the error
    CUT = "cut"  # the user barged in
    YIELDED = "yielded"  # released early and talked over: the same turn goes on
    RETRACTED = "retracted"  # the engine withdrew it (a redone speculation); more may follow
    ABANDONED = "abandoned"  # the user went on before the turn was confirmed


class Move(Enum):
    CONFIRM = "confirm"  # the engine heard the turn is confirmed
    AUDIO = "audio"  # a chunk of it went to the wire
    END = "end"  # the engine's ReplyEnd (done or interrupted)
    END_ERROR = "end_error"  # the engine's ReplyEnd with an error
    TIMEOUT = "timeout"  # reply_timeout_s passed after the confirmation without an end
    PLAYED_OUT = "played_out"  # the timeline passed its last sample
    BARGE_IN = "barge_in"
    USER_RESUMED = "user_resumed"  # the turn machine's yield
    RETRACT = "retract"  # the engine's ReplyEnd("cancelled")
    ABANDON = "abandon"  # the turn machine dropped the speculation


_S, _M = ReplyState, Move
_HEARD = (_S.RELEASED, _S.PLAYING, _S.FINISHING, _S.FAILING)

#: (state, move) → next state. The specification: anything else raises ``IllegalMove``.
MOVES: Final[dict[tuple[ReplyState, Move], ReplyState]] = {
    (_S.HELD, _M.CONFIRM): _S.RELEASED,
    (_S.HELD, _M.ABANDON): _S.ABANDONED,
    (_S.HELD, _M.RETRACT): _S.RETRACTED,
    (_S.HELD, _M.BARGE_IN): _S.CUT,
    (_S.HELD, _M.USER_RESUMED): _S.YIELDED,
    (_S.RELEASED, _M.AUDIO): _S.PLAYING,
    (_S.PLAYING, _M.AUDIO): _S.PLAYING,
    (_S.RELEASED, _M.END): _S.FINISHING,
    (_S.PLAYING, _M.END): _S.FINISHING,
    (_S.RELEASED, _M.END_ERROR): _S.FAILING,
    (_S.PLAYING, _M.END_ERROR): _S.FAILING,
    (_S.RELEASED, _M.TIMEOUT): _S.FAILING,
    (_S.PLAYING, _M.TIMEOUT): _S.FAILING,
    (_S.RELEASED, _M.RETRACT): _S.RETRACTED,
    (_S.PLAYING, _M.RETRACT): _S.RETRACTED,
    (_S.FINISHING, _M.PLAYED_OUT): _S.ENDED,
    (_S.FAILING, _M.PLAYED_OUT): _S.FAILED,
    **{(state, _M.BARGE_IN): _S.CUT for state in _HEARD},
    **{(state, _M.USER_RESUMED): _S.YIELDED for state in _HEARD},
}

#: Why each move happens, for the generated documentation.
WHY: Final[dict[tuple[ReplyState, Move], str]] = {
    (_S.HELD, _M.CONFIRM): "the engine was told the turn is confirmed: what was held goes out",
    (_S.HELD, _M.ABANDON): "the user went on during the speculation: everything held is dropped",
    (_S.HELD, _M.RETRACT): "the engine redoes its speculation: what it held is dropped, a new reply follows",
    (_S.HELD, _M.BARGE_IN): "speech over a reply confirmed a moment ago, before anything was released",
    (_S.HELD, _M.USER_RESUMED): "the user went on right after the release, before anything was released",
    (_S.RELEASED, _M.AUDIO): "its first chunk is framed and sent",
    (_S.PLAYING, _M.AUDIO): "more audio, paced at most max_lead_ms ahead of real time",
    (_S.RELEASED, _M.END): "an empty reply: an end-of-segment frame, nothing to hear",
    (_S.PLAYING, _M.END): "the engine is done: the last frames go out, the reply plays out",
    (_S.RELEASED, _M.END_ERROR): "the engine failed before any audio: the turn ends with its error",
    (_S.PLAYING, _M.END_ERROR): "the engine failed mid-reply: what was sent plays out, the turn fails",
    (_S.RELEASED, _M.TIMEOUT): "no end within reply_timeout_s: error event, the engine is interrupted",
    (_S.PLAYING, _M.TIMEOUT): "no end within reply_timeout_s: error event, the engine is interrupted",
    (_S.RELEASED, _M.RETRACT): "the engine withdrew it before any audio; a new reply follows, released",
    (_S.PLAYING, _M.RETRACT): "the engine withdrew it: the client drops it from where it is heard",
    (_S.FINISHING, _M.PLAYED_OUT): "its last sample was heard: the turn machine hears reply_done",
    (_S.FAILING, _M.PLAYED_OUT): "its last sample was heard: the turn ends, recorded as an error",
    **{(s, _M.BARGE_IN): "the user spoke over it (min_barge_in_ms): cut where it is heard" for s in _HEARD},
    **{(s, _M.USER_RESUMED): "the release was early: cut where it is heard, the same turn goes on" for s in _HEARD},
}

#: Replies that take the engine's output.
OPEN: Final = frozenset({_S.HELD, _S.RELEASED, _S.PLAYING})
#: Replies the user may still hear (or will): the responding turn's reply.
LIVE: Final = frozenset({_S.RELEASED, _S.PLAYING, _S.FINISHING, _S.FAILING})
#: Terminal states: no move leaves them.
TERMINAL: Final = frozenset(set(ReplyState) - {state for state, _ in MOVES})
#: How a turn ended, by the state its reply ended in (the others do not end the turn).
OUTCOME: Final[dict[ReplyState, str]] = {_S.ENDED: "done", _S.FAILED: "error", _S.CUT: "interrupted"}


class IllegalMove(Exception):
    """A move the table does not allow in the reply's state (a bug in the caller)."""


@dataclass(slots=True, eq=False)
class Reply:
    """One reply: its state, what it holds back, and its place on the output timeline."""

    turn_id: int
    state: ReplyState = ReplyState.HELD
    held: list[EngineOutput] = field(default_factory=list)
    stream: ReplyStream | None = None
    text: tuple[str, bool] | None = None  # the agent's words so far, for the lips
    played_out_at: float | None = None  # session clock, once FINISHING or FAILING

    def move(self, move: Move) -> ReplyState:
        try:
            self.state = MOVES[(self.state, move)]
        except KeyError:
            raise IllegalMove(f"reply {self.turn_id}: {move.value} is not allowed in {self.state.value}") from None
        return self.state

    def allows(self, move: Move) -> bool:
        return (self.state, move) in MOVES

    @property
    def open(self) -> bool:
        return self.state in OPEN

    @property
    def live(self) -> bool:
        return self.state in LIVE
