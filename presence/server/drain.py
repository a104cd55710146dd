"""Graceful drain: which sessions a draining worker may close now, and how it tells them.

On SIGTERM a worker stops taking sessions and closes each one as soon as it has no turn in
flight: the user is not mid-utterance and no reply is being prepared or spoken. A session
still in a turn at the deadline is closed anyway. Every close carries ``GOING_AWAY`` (1001)
and ``RECONNECT_REASON``, the hint docs/protocol.md documents: reconnect now, another
worker will take the session. ``close_now`` is the pure decision; the hub runs the loop.
"""

from __future__ import annotations

from typing import Final

from presence.session.turns import TurnState

#: The close reason of a drained session: clients that see it reconnect at once (docs/protocol.md).
RECONNECT_REASON: Final = "server draining: reconnect"
#: The 1013 reason for a hello that reaches a worker that is already draining.
DRAINING_REFUSAL: Final = "server draining: reconnect"

#: Turn states in which nothing is in flight: closing loses no speech and no reply.
IDLE_STATES: Final = frozenset({TurnState.LISTENING})


def close_now(state: TurnState | None, now_s: float, deadline_s: float) -> bool:
    """Close this connection now? ``state`` is None while the hello is still owed."""
    return state is None or state in IDLE_STATES or now_s >= deadline_s


def turn_state(session: object) -> TurnState:
    """The session's ``state``: a property today, ``state()`` in the session rewrite; either
    reads the same TurnState, so the drain does not depend on which one is merged first."""
    value = session.state  # type: ignore[attr-defined]
    result = value() if callable(value) else value
    assert isinstance(result, TurnState)
    return result
