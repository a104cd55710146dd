"""The turn table is the specification: every (state, signal) pair either moves as listed or raises."""

from __future__ import annotations

import itertools
import runpy
from pathlib import Path

import pytest

from presence.session.turns import ENGINE_EVENTS, TRANSITIONS, WHY, IllegalTransition, Signal, TurnState, next_state

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("state", "signal"), list(itertools.product(TurnState, Signal)))
def test_every_pair_moves_as_the_table_says_or_raises(state: TurnState, signal: Signal) -> None:
    if (state, signal) in TRANSITIONS:
        assert next_state(state, signal) is TRANSITIONS[(state, signal)]
    else:
        with pytest.raises(IllegalTransition, match=f"{signal.value} is not allowed in {state.value}"):
            next_state(state, signal)


def test_engine_events_only_accompany_legal_moves() -> None:
    assert set(ENGINE_EVENTS) <= set(TRANSITIONS)


def test_every_move_is_explained() -> None:
    assert set(WHY) == set(TRANSITIONS)


def test_every_state_is_reachable_from_listening_and_can_return_to_it() -> None:
    reach = {TurnState.LISTENING}
    while True:
        more = {b for (a, _), b in TRANSITIONS.items() if a in reach} - reach
        if not more:
            break
        reach |= more
    assert reach == set(TurnState)
    for state in TurnState:
        seen, frontier = {state}, {state}
        while frontier:
            frontier = {b for (a, _), b in TRANSITIONS.items() if a in frontier} - seen
            seen |= frontier
        assert TurnState.LISTENING in seen


def test_the_documented_table_and_diagram_are_generated_from_the_code() -> None:
    generator = runpy.run_path(str(REPO / "scripts" / "gen_turn_docs.py"))
    doc = (REPO / "docs" / "turn-taking.md").read_text()
    assert generator["generated"]() in doc, "regenerate with: python scripts/gen_turn_docs.py"
    assert generator["reply_lifecycle"]() in doc, "regenerate with: python scripts/gen_turn_docs.py"
