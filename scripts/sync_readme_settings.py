"""Rewrite the README's settings table from ``presence.config.Settings`` (tests check it)."""

from __future__ import annotations

from pathlib import Path

from presence.config import settings_table

START, END = "<!-- settings:start -->\n", "\n<!-- settings:end -->"


def main() -> None:
    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = readme.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + START + settings_table() + END + tail)


if __name__ == "__main__":
    main()
