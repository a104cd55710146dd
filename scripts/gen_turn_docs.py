"""Write the turn-taking and reply-lifecycle tables and diagrams into docs/turn-taking.md.

Run ``python scripts/gen_turn_docs.py`` after changing ``presence/session/turns.py`` or
``presence/session/replies.py``; a test fails while the document and the tables disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

from presence.session import replies
from presence.session.turns import ENGINE_EVENTS, TRANSITIONS, WHY

DOC = Path(__file__).resolve().parents[1] / "docs" / "turn-taking.md"
BEGIN, END = "<!-- BEGIN generated from presence/session/turns.py -->", "<!-- END generated -->"
REPLY_BEGIN = "<!-- BEGIN generated from presence/session/replies.py -->"
REPLY_END = "<!-- END generated replies -->"


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


def reply_lifecycle() -> str:
    lines = ["```mermaid", "stateDiagram-v2", "    [*] --> held"]
    rows = ["| state | move | next state | why |", "|---|---|---|---|"]
    for (state, move), target in replies.MOVES.items():
        lines.append(f"    {state.value} --> {target.value}: {move.value}")
        rows.append(f"| {state.value} | {move.value} | {target.value} | {replies.WHY[(state, move)]} |")
    lines += [f"    {state.value} --> [*]" for state in replies.ReplyState if state in replies.TERMINAL]
    lines.append("```")
    return f"{REPLY_BEGIN}\n" + "\n".join(lines) + "\n\n" + "\n".join(rows) + f"\n{REPLY_END}"


def _replace(text: str, begin: str, end: str, block: str) -> str:
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return head + block + tail


def main() -> int:
    text = DOC.read_text()
    for begin, end in ((BEGIN, END), (REPLY_BEGIN, REPLY_END)):
        if begin not in text or end not in text:
            print(f"{DOC} lacks the markers {begin} … {end}", file=sys.stderr)
            return 1
    text = _replace(text, BEGIN, END, generated())
    DOC.write_text(_replace(text, REPLY_BEGIN, REPLY_END, reply_lifecycle()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
