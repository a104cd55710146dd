"""docs/protocol.md's event tables against presence.protocol.events: every documented kind has
its TypedDict, with the same fields, the same ones optional; and the bodies the code builds
carry exactly those fields."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from presence.protocol.events import CLIENT_EVENTS, SERVER_EVENTS
from presence.session.gestures import GestureConfig, Gestures
from presence.session.records import TurnRecord
from tests.conftest import REPO

PROTOCOL = REPO / "docs" / "protocol.md"


def _top_level_pieces(cell: str) -> list[str]:
    """Split a table cell at the commas outside parentheses."""
    pieces, depth, current = [], 0, ""
    for char in cell:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            pieces.append(current.strip())
            current = ""
        else:
            current += char
    return [*pieces, current.strip()] if current.strip() else pieces


def documented_events(heading: str) -> dict[str, tuple[set[str], set[str]]]:
    """``type`` → (required fields, optional fields) from the table under ``heading``.

    A field is a piece of the cell that starts with a backticked name, ``optional`` before it
    marks it optional; ``free-form`` stands for no fixed fields.
    """
    text = PROTOCOL.read_text()
    section = text[text.index(heading) :]
    section = section[: section.index("\n\n", section.index("|---"))]
    events: dict[str, tuple[set[str], set[str]]] = {}
    rows = [line for line in section.splitlines() if line.startswith("|")]
    for row in rows[2:]:  # after the header and its rule
        kind_cell, fields_cell = (cell.strip() for cell in row.strip("|").split("|")[:2])
        kind = kind_cell.strip("`")
        required: set[str] = set()
        optional: set[str] = set()
        for piece in _top_level_pieces(fields_cell):
            if piece == "free-form":
                continue
            match = re.match(r"(optional )?`(\w+)`", piece)
            assert match, f"{kind}: cannot read the field {piece!r} in docs/protocol.md"
            (optional if match.group(1) else required).add(match.group(2))
        events[kind] = (required, optional)
    return events


def typed_fields(body: type[Any]) -> tuple[set[str], set[str]]:
    return set(body.__required_keys__) - {"type"}, set(body.__optional_keys__)


@pytest.mark.parametrize(
    ("heading", "typed"),
    [("### Events, server → client", SERVER_EVENTS), ("### Events, client → server", CLIENT_EVENTS)],
)
def test_every_documented_event_has_a_typed_body_with_its_fields(heading: str, typed: dict[str, type[Any]]) -> None:
    documented = documented_events(heading)
    assert list(documented) == list(typed), "the same kinds, in the same order"
    for kind, body in typed.items():
        assert typed_fields(body) == documented[kind], kind
        assert body.__annotations__["type"].__args__ == (kind,), f"{kind}: its Literal type"


def test_the_metrics_event_carries_exactly_the_documented_fields() -> None:
    body = TurnRecord(turn_id=3).to_json()
    required, optional = typed_fields(SERVER_EVENTS["metrics"])
    assert set(body) - {"type"} == required | optional
    assert body["type"] == "metrics"


def test_listening_gestures_carry_exactly_the_documented_fields() -> None:
    gestures = Gestures(random.Random(1), GestureConfig(blink_double_p=0.0)).poll(10_000 * 16)
    required, optional = typed_fields(SERVER_EVENTS["gesture"])
    for gesture in gestures:
        body = gesture.to_json()
        assert required <= set(body) - {"type"} <= required | optional
        assert body["at"] is None, "listening cues play now"
