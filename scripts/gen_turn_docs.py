"""Write the turn-taking table and state diagram into docs/turn-taking.md, from the code.

Run ``python scripts/gen_turn_docs.py`` after changing ``presence/session/turns.py``; a test
fails while the document and the table disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

from presence.session.turns import ENGINE_EVENTS, TRANSITIONS, WHY

DOC = Path(__file__).resolve().parents[1] / "docs" / "turn-taking.md"
BEGIN, END = "<!-- BEGIN generated from presence/session/turns.py -->", "<!-- END generated -->"


def transition_table() -> str:
    rows = ["| state | signal | next state | engine event | why |", "|---|---|---|---|---|"]
    for (state, signal), target in TRANSITIONS.items():
        event = ENGINE_EVENTS.get((state, signal))
        rows.append(
            f"| {state.value} | {signal.value} | {target.value} | {event.value if event else '—'} "
            f"| {WHY[(state, signal)]} |"
        )
    return "\n".join(rows)


def state_diagram() -> str:
    lines = ["```mermaid", "stateDiagram-v2", "    [*] --> listening"]
    for (state, signal), target in TRANSITIONS.items():
        event = ENGINE_EVENTS.get((state, signal))
        label = signal.value + (f" / {event.value}" if event else "")
        lines.append(f"    {state.value} --> {target.value}: {label}")
    lines.append("```")
    return "\n".join(lines)


def generated() -> str:
    return f"{BEGIN}\n{state_diagram()}\n\n{transition_table()}\n{END}"


def main() -> int:
    text = DOC.read_text()
    if BEGIN not in text or END not in text:
        print(f"{DOC} lacks the markers {BEGIN} … {END}", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(head + generated() + tail)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
