"""The venue's facts (``--knowledge FILE``, Markdown or YAML) put into the system prompt.

A 135M model cannot know where the station is; it can repeat a fact that sits in its prompt.
The system prompt comes first and is the same for every session, so llama.cpp's prefix cache
evaluates it once (at start-up) and every turn starts after it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

MAX_CHARS: Final = 6000  # ~1500 tokens: the embedded model's context is 2048
INSTRUCTION: Final = (
    "Answer from these facts. If the answer is not in them, say you do not know. "
    "Answer in one or two short sentences, as spoken words, no lists or markup."
)


class KnowledgeError(ValueError):
    """The knowledge file cannot be read or is too long for the model's context."""


def _flatten(value: Any, prefix: str = "") -> list[str]:
    """YAML as plain lines: ``Section: key: value``; list items each on a line."""
    if isinstance(value, dict):
        lines: list[str] = []
        for key, item in value.items():
            label = f"{prefix}{key}"
            if isinstance(item, dict | list):
                lines += _flatten(item, f"{label}: ")
            else:
                lines.append(f"{label}: {item}")
        return lines
    if isinstance(value, list):
        return [line for item in value for line in _flatten(item, prefix)]
    return [f"{prefix}{value}"]


def load_knowledge(path: Path) -> str:
    """The facts of a Markdown, text or YAML file as prompt text."""
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeError(f"cannot read the knowledge file {path}: {exc}") from exc
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            text = "\n".join(_flatten(yaml.safe_load(raw)))
        except yaml.YAMLError as exc:
            raise KnowledgeError(f"{path} is not valid YAML: {exc}") from exc
    else:
        text = raw
    text = text.strip()
    if len(text) > MAX_CHARS:
        raise KnowledgeError(
            f"{path} has {len(text)} characters; the embedded model's context holds about {MAX_CHARS}. "
            "Shorten it, or use a bigger model with --llm-url."
        )
    return text


def system_prompt(persona: str, knowledge: str | None) -> str:
    """The persona, then the facts (when there are any)."""
    if not knowledge:
        return persona
    return f"{persona}\n\n{INSTRUCTION}\n\nFacts:\n{knowledge}"
