"""The venue's facts (``--knowledge FILE``, Markdown or YAML) put into the system prompt.

A 135M model cannot know where the station is; it can repeat a fact that sits in its prompt.
The system prompt comes first and is the same for every session, so llama.cpp's prefix cache
evaluates it once (at start-up) and every turn starts after it.
"""

from __future__ import annotations

import re
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


_STOP_WORDS: Final = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "was",
        "were",
        "be",
        "do",
        "does",
        "did",
        "i",
        "me",
        "my",
        "you",
        "your",
        "we",
        "our",
        "it",
        "its",
        "to",
        "of",
        "in",
        "on",
        "at",
        "for",
        "from",
        "with",
        "and",
        "or",
        "can",
        "could",
        "would",
        "will",
        "what",
        "when",
        "where",
        "which",
        "who",
        "how",
        "there",
        "here",
        "this",
        "that",
        "um",
        "uh",
        "please",
        "tell",
        "get",
        "have",
        "has",
        "any",
        "some",
    ]
)


def _content_words(text: str) -> set[str]:
    words = re.findall(r"[a-z0-9']+", text.lower())
    return {w.removesuffix("s") if len(w) > 3 else w for w in words if w not in _STOP_WORDS}


def facts_of(knowledge: str) -> list[str]:
    """The knowledge as separate facts: its non-empty lines, without list markers or headings."""
    facts = []
    for line in knowledge.splitlines():
        line = line.strip().lstrip("-*•").strip()
        if line and not line.startswith("#"):
            facts.append(line)
    return facts


def relevant_facts(facts: list[str], question: str, limit: int = 3) -> list[str]:
    """The facts sharing the most content words with the question (pure; ties keep file order).

    A 135M model answers far better from the two or three facts next to the question than from
    a page of them at the top of its prompt.
    """
    asked = _content_words(question)
    scored = [(len(asked & _content_words(fact)), -i, fact) for i, fact in enumerate(facts)]
    return [fact for score, _, fact in sorted(scored, reverse=True)[:limit] if score > 0]


def user_message(question: str, facts: list[str]) -> str:
    """What the model is asked: the words heard, then the facts that bear on them (if any)."""
    if not facts:
        return question
    return f"{question}\n\n(Relevant facts: {' '.join(facts)})"


def system_prompt(persona: str, knowledge: str | None) -> str:
    """The persona, then the facts (when there are any)."""
    if not knowledge:
        return persona
    return f"{persona}\n\n{INSTRUCTION}\n\nFacts:\n{knowledge}"
