"""The drain's decision and the clients' reconnect timing, as tables (the pure cores)."""

from __future__ import annotations

import pytest

from presence.client.reconnect import BACKOFF_S, HINT_JITTER_S, reconnect_delay_s, should_reconnect
from presence.server.drain import RECONNECT_REASON, close_now
from presence.session.turns import TurnState


@pytest.mark.parametrize(
    ("state", "now_s", "expected"),
    [
        (None, 0.0, True),  # still owes its hello: nothing to lose
        (TurnState.LISTENING, 0.0, True),
        (TurnState.USER_SPEAKING, 0.0, False),  # mid-utterance
        (TurnState.PAUSED, 0.0, False),
        (TurnState.SPECULATING, 0.0, False),
        (TurnState.RESPONDING, 0.0, False),  # the reply plays out first
        (TurnState.RESPONDING, 10.0, True),  # ...until the deadline
        (TurnState.USER_SPEAKING, 11.0, True),
    ],
)
def test_a_draining_worker_closes_a_session_once_no_turn_is_in_flight_or_at_the_deadline(
    state: TurnState | None, now_s: float, expected: bool
) -> None:
    assert close_now(state, now_s, deadline_s=10.0) is expected


def test_the_drain_hint_brings_a_client_back_at_once_and_other_closes_back_off() -> None:
    assert should_reconnect(1001) and should_reconnect(1013) and should_reconnect(1006)
    assert not should_reconnect(1000) and not should_reconnect(4005) and not should_reconnect(None)
    for r in (0.0, 0.5, 0.999):
        assert 0 <= reconnect_delay_s(0, 1001, RECONNECT_REASON, r) < HINT_JITTER_S
    assert reconnect_delay_s(0, 1001, "server is shutting down", 0.5) == BACKOFF_S[0]
    assert reconnect_delay_s(1, 1001, RECONNECT_REASON, 0.5) == BACKOFF_S[1], "a failed retry backs off"
    assert reconnect_delay_s(50, 1006, "", 0.5) == BACKOFF_S[-1]
