"""The session's decisions as deterministic traces: SessionCore driven with fake time.

Hold, release, retract, barge-in, the yield, reply timeout, engine failure and pacing, each
in milliseconds; together they take every move of the reply lifecycle table (the last test
checks that). The WebSocket tests in this folder stay as the integration layer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from presence.engines.base import EngineError, Transcript, TurnEventKind, TurnTaken
from presence.protocol.frames import AudioOut, Ping, Pong
from presence.session.replies import MOVES, IllegalMove, Move, Reply, ReplyState
from tests.session.trace import Trace, make_config

K = TurnEventKind


def speculating(trace: Trace) -> int:
    """Speak, then pause until the engine is asked to speculate; returns the turn id."""
    trace.speak(0.6)
    trace.until(lambda: K.USER_PAUSED in trace.told_kinds())
    return trace.told[-1].turn_id


def confirmed(trace: Trace) -> int:
    turn = speculating(trace)
    trace.until(lambda: K.TURN_CONFIRMED in trace.told_kinds())
    return turn


def test_a_speculative_reply_is_held_until_the_confirmation_then_plays_out_and_ends_the_turn() -> None:
    trace = Trace()
    turn = speculating(trace)
    trace.say(turn, "Hello there.")
    trace.reply_audio(turn, 600)
    trace.end(turn)
    assert trace.audio_frames() == [] and trace.reply_state(turn) == "held"
    trace.until(lambda: K.TURN_CONFIRMED in trace.told_kinds())
    confirmed_at = trace.now
    assert trace.reply_state(turn) == "finishing"  # released, sent, ended in one go
    assert trace.audio_frames() and all(at >= confirmed_at for at, f in trace.frames if isinstance(f, AudioOut))
    trace.until(lambda: bool(trace.published), limit_s=2)
    record = trace.published[0]
    assert record.outcome == "done" and record.agent_text == "Hello there."
    assert trace.reply_state(turn) == "ended"
    assert trace.states()[-1] == "listening"
    # The metrics event carries the wall-clock marks after the confirmation (was always {}).
    (metrics,) = trace.events("metrics")
    after = metrics["endpoint"]["after_confirm_ms"]
    assert after["turn_confirmed"] == 0.0 and after["first_audio_sent"] >= 0.0
    assert after["engine_first_audio"] < 0  # speculation: the audio was ready before


def test_an_abandoned_speculation_drops_what_it_held_and_what_arrives_before_the_engine_returns() -> None:
    trace = Trace(hold_acks=True)
    turn = speculating(trace)
    trace.reply_audio(turn, 200)
    trace.speak(0.3, seed=1)  # the user goes on
    assert K.TURN_ABANDONED in trace.told_kinds() and trace.reply_state(turn) == "abandoned"
    trace.reply_audio(turn, 200)  # still in flight while the engine drops its queue
    assert trace.core.replies[turn].held == []
    trace.ack()
    assert trace.reply_state(turn) is None  # the next speculation of this turn is a new reply
    trace.until(lambda: K.USER_PAUSED in trace.told_kinds()[3:])
    trace.reply_audio(turn, 300)
    trace.end(turn)
    trace.ack()
    trace.until(lambda: K.TURN_CONFIRMED in trace.told_kinds())
    trace.ack()
    trace.settle()
    sent = sum(len(f.data) for f in trace.audio_frames()) // 2
    assert sent == 300 * 24  # only the second speculation's 300 ms went out
    assert trace.core.records[turn].abandoned_speculations == 1


def test_a_retraction_before_any_audio_is_silent_and_a_retraction_mid_reply_tells_the_client() -> None:
    trace = Trace()
    turn = speculating(trace)
    trace.reply_audio(turn, 200)
    trace.engine(Transcript("agent", "first try", True, turn))
    from presence.engines.base import ReplyEnd

    trace.engine(ReplyEnd(turn, "cancelled"))
    assert trace.reply_state(turn) is None and trace.events("interrupt") == []
    trace.until(lambda: K.TURN_CONFIRMED in trace.told_kinds())
    trace.say(turn, "second try")  # released, no audio yet: withdrawn without a word to the client
    assert trace.reply_state(turn) == "released"
    trace.engine(ReplyEnd(turn, "cancelled"))
    assert trace.events("interrupt") == []
    trace.reply_audio(turn, 400)
    assert trace.reply_state(turn) == "playing"
    trace.engine(ReplyEnd(turn, "cancelled"))
    (cut,) = trace.events("interrupt")
    assert cut["reason"] == "retracted" and cut["turn_id"] == turn
    trace.reply_audio(turn, 300)  # the redone reply is released at once: the turn is confirmed
    assert trace.reply_state(turn) == "playing"
    trace.end(turn)
    trace.until(lambda: bool(trace.published))
    assert trace.published[0].outcome == "done"


def test_a_barge_in_cuts_the_reply_where_it_is_heard_and_tells_the_engine_how_much() -> None:
    trace = Trace()
    turn = confirmed(trace)
    trace.reply_audio(turn, 3000)
    trace.quiet(0.5)
    trace.speak(0.4, seed=2)
    (cut,) = trace.events("interrupt")
    assert "reason" not in cut and trace.reply_state(turn) == "cut"
    (interrupt,) = trace.interrupts
    assert 0.3 * 16000 < interrupt.heard_samples < 1.2 * 16000  # engine rate
    assert trace.published[0].outcome == "interrupted" and trace.published[0].interrupted
    before = len(trace.audio_frames())
    trace.reply_audio(turn, 200)  # the engine had not stopped yet: absorbed
    trace.end(turn)
    assert len(trace.audio_frames()) == before


def test_a_yield_stops_the_early_reply_and_the_next_confirmation_answers_the_whole_turn() -> None:
    trace = Trace(config=make_config(yield_window_ms=1500))
    turn = confirmed(trace)
    trace.reply_audio(turn, 2000)
    trace.speak(0.3, seed=3)
    assert K.TURN_RESUMED in trace.told_kinds()
    (cut,) = trace.events("interrupt")
    assert cut["reason"] == "yield"
    assert trace.reply_state(turn) is None  # yielded, and the engine has returned
    trace.until(lambda: trace.told_kinds().count(K.TURN_CONFIRMED) == 2)
    trace.reply_audio(turn, 300)
    trace.end(turn)
    trace.until(lambda: bool(trace.published))
    (record,) = trace.published
    assert record.turn_id == turn and record.yields == 1 and record.yield_heard_samples
    assert record.outcome == "done"


def test_a_reply_that_never_ends_times_out_with_an_error_and_the_session_goes_on() -> None:
    trace = Trace()
    turn = confirmed(trace)
    trace.reply_audio(turn, 200)
    trace.until(lambda: bool(trace.published), limit_s=4)
    (error,) = trace.events("error")
    assert error["code"] == "engine_timeout" and error["turn_id"] == turn
    assert trace.interrupts[-1].turn_id == turn
    assert trace.published[0].outcome == "error" and trace.reply_state(turn) == "failed"
    assert trace.failed is None
    trace.end(turn)  # the engine catches up: nothing happens
    assert len(trace.events("metrics")) == 1


def test_a_reply_that_never_starts_times_out_and_one_that_fails_before_audio_ends_the_turn() -> None:
    silent = Trace()
    turn = confirmed(silent)
    silent.until(lambda: bool(silent.published), limit_s=4)
    assert silent.published[0].outcome == "error" and silent.events("error")[0]["code"] == "engine_timeout"
    failing = Trace()
    turn = confirmed(failing)
    failing.say(turn, "Let me")
    failing.end(turn, "error")
    failing.until(lambda: bool(failing.published))
    assert failing.published[0].outcome == "error" and failing.audio_frames() == []


def test_an_engine_error_ends_the_turn_as_an_error_and_a_fatal_one_fails_the_session_at_once() -> None:
    trace = Trace()
    turn = confirmed(trace)
    trace.reply_audio(turn, 200)
    trace.engine(EngineError("tts crashed", turn))
    trace.end(turn, "error")
    trace.until(lambda: bool(trace.published))
    assert trace.published[0].outcome == "error" and trace.published[0].error == "tts crashed"
    assert trace.events("metrics")[0]["outcome"] == "error"
    trace.engine(EngineError("model process exited", fatal=True))
    assert trace.failed == "model process exited"
    assert trace.events("error")[-1]["message"] == "model process exited"


def test_reply_audio_is_paced_to_the_lead_and_engine_output_is_refused_past_the_hold_limit() -> None:
    trace = Trace(config=make_config(reply_timeout_s=30))
    turn = confirmed(trace)
    start = trace.now
    trace.reply_audio(turn, 5000)  # delivered at once, far faster than real time
    trace.end(turn)
    lead_s = trace.core.timeline.lead_s(trace.now)
    assert 0.9 <= lead_s <= 1.1  # max_lead_ms
    deadline = trace.core.next_deadline(trace.now)
    assert deadline is not None and trace.now < deadline <= trace.now + 0.05
    trace.until(lambda: trace.reply_state(turn) == "finishing", limit_s=6)
    assert trace.now - start > 3.5  # the last chunk waited for real time
    assert max(f.timestamp for f in trace.audio_frames()) <= (trace.now + 1.05) * 24000
    held = Trace(config=make_config())
    t2 = speculating(held)
    limit = held.config.held_outputs_limit
    for _ in range(limit // 50):
        held.reply_audio(t2, 1000)
    assert not held.core.accepting()


def test_an_engine_that_takes_the_turn_itself_confirms_it_at_once() -> None:
    trace = Trace(config=make_config(confirm_ms=3000))
    turn = speculating(trace)
    trace.engine(TurnTaken(turn))
    assert trace.states()[-1] == "responding" and trace.told_kinds()[-1] is K.TURN_CONFIRMED
    trace.end(turn)  # an empty reply: an end-of-segment frame, then the turn ends
    trace.until(lambda: bool(trace.published))
    assert trace.published[0].outcome == "done"


def test_ping_is_answered_with_the_core_clock() -> None:
    trace = Trace()
    trace.now = 1.5
    trace.run(trace.core.on_frame(Ping(7, timestamp=7), trace.now))
    ((_, pong),) = trace.frames
    assert isinstance(pong, Pong) and pong.timestamp == 1_500_000


def test_the_table_rejects_moves_it_does_not_hold() -> None:
    reply = Reply(1)
    with pytest.raises(IllegalMove):
        reply.move(Move.AUDIO)
    reply.move(Move.CONFIRM)
    reply.move(Move.END)
    with pytest.raises(IllegalMove):
        reply.move(Move.CONFIRM)


# ------------------------------------------------------------------------ every move


def reach(state: ReplyState, yield_window_ms: int) -> tuple[Trace, int]:
    """A trace whose responding turn's reply is in ``state``."""
    trace = Trace(config=make_config(yield_window_ms=yield_window_ms))
    if state is ReplyState.HELD:  # confirmed, the engine not yet returned
        trace.hold_acks = True
        turn = speculating(trace)
        trace.ack()
        trace.until(lambda: K.TURN_CONFIRMED in trace.told_kinds())
        trace.reply_audio(turn, 200)
        return trace, turn
    turn = confirmed(trace)
    if state is not ReplyState.RELEASED:
        trace.reply_audio(turn, 900)  # within max_lead_ms: all of it sent at once
    if state is ReplyState.FINISHING:
        trace.end(turn)
    if state is ReplyState.FAILING:
        trace.end(turn, "error")
    assert trace.reply_state(turn) == state.value
    return trace, turn


@pytest.mark.parametrize(
    "state", [ReplyState.HELD, ReplyState.RELEASED, ReplyState.PLAYING, ReplyState.FINISHING, ReplyState.FAILING]
)
@pytest.mark.parametrize("move", [Move.BARGE_IN, Move.USER_RESUMED])
def test_speech_over_a_reply_in_any_state_cuts_it_or_yields(state: ReplyState, move: Move) -> None:
    trace, turn = reach(state, yield_window_ms=1500 if move is Move.USER_RESUMED else 0)
    trace.speak(0.3 if move is Move.BARGE_IN else 0.12, seed=4)
    trace.ack()
    assert trace.events("interrupt")[-1]["turn_id"] == turn
    expected = MOVES[(state, move)]
    if move is Move.BARGE_IN:
        assert trace.reply_state(turn) == expected.value and trace.published[0].outcome == "interrupted"
    else:
        assert trace.reply_state(turn) is None and K.TURN_RESUMED in trace.told_kinds()  # yielded, detached


@pytest.fixture
def moves_taken(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[tuple[ReplyState, Move]]]:
    taken: set[tuple[ReplyState, Move]] = set()
    original: Callable[[Reply, Move], ReplyState] = Reply.move

    def recording(self: Reply, move: Move) -> ReplyState:
        taken.add((self.state, move))
        return original(self, move)

    monkeypatch.setattr(Reply, "move", recording)
    yield taken


def test_the_traces_take_every_move_of_the_reply_table(moves_taken: set[tuple[ReplyState, Move]]) -> None:
    for test in (
        test_a_speculative_reply_is_held_until_the_confirmation_then_plays_out_and_ends_the_turn,
        test_an_abandoned_speculation_drops_what_it_held_and_what_arrives_before_the_engine_returns,
        test_a_retraction_before_any_audio_is_silent_and_a_retraction_mid_reply_tells_the_client,
        test_a_barge_in_cuts_the_reply_where_it_is_heard_and_tells_the_engine_how_much,
        test_a_yield_stops_the_early_reply_and_the_next_confirmation_answers_the_whole_turn,
        test_a_reply_that_never_ends_times_out_with_an_error_and_the_session_goes_on,
        test_an_engine_error_ends_the_turn_as_an_error_and_a_fatal_one_fails_the_session_at_once,
        test_a_reply_that_never_starts_times_out_and_one_that_fails_before_audio_ends_the_turn,
        test_reply_audio_is_paced_to_the_lead_and_engine_output_is_refused_past_the_hold_limit,
        test_an_engine_that_takes_the_turn_itself_confirms_it_at_once,
    ):
        test()
    for state in (ReplyState.HELD, ReplyState.RELEASED, ReplyState.PLAYING, ReplyState.FINISHING, ReplyState.FAILING):
        for move in (Move.BARGE_IN, Move.USER_RESUMED):
            test_speech_over_a_reply_in_any_state_cuts_it_or_yields(state, move)
    missing = set(MOVES) - moves_taken
    assert not missing, sorted((s.value, m.value) for s, m in missing)


def test_every_reply_state_is_reachable_from_held_and_ends_in_a_terminal_state() -> None:
    from presence.session.replies import TERMINAL

    seen, frontier = {ReplyState.HELD}, {ReplyState.HELD}
    while frontier:
        frontier = {b for (a, _), b in MOVES.items() if a in frontier} - seen
        seen |= frontier
    assert seen == set(ReplyState)
    assert {
        ReplyState.ENDED,
        ReplyState.FAILED,
        ReplyState.CUT,
        ReplyState.YIELDED,
        ReplyState.RETRACTED,
        ReplyState.ABANDONED,
    } == TERMINAL
