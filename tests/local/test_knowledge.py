"""The knowledge file: Markdown or YAML facts in the system prompt, with a size limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from presence.bench.answers import QUESTIONS, Question, score
from presence.engines.local.knowledge import (
    MAX_CHARS,
    KnowledgeError,
    facts_of,
    load_knowledge,
    relevant_facts,
    system_prompt,
    user_message,
)
from tests.conftest import REPO


def test_markdown_facts_are_taken_as_written() -> None:
    facts = load_knowledge(REPO / "examples" / "concierge.md")
    assert "seagull42" in facts and "Quay Street" in facts


def test_yaml_facts_become_one_line_each(tmp_path: Path) -> None:
    path = tmp_path / "venue.yaml"
    path.write_text(
        "hotel: Harbour View\nhours:\n  breakfast: 6:30 to 10:30\n  pool: 7 am to 9 pm\nnotes:\n  - Dogs welcome\n"
    )
    assert load_knowledge(path).splitlines() == [
        "hotel: Harbour View",
        "hours: breakfast: 6:30 to 10:30",
        "hours: pool: 7 am to 9 pm",
        "notes: Dogs welcome",
    ]


def test_a_file_too_long_for_the_context_is_refused_with_a_way_out(tmp_path: Path) -> None:
    path = tmp_path / "long.md"
    path.write_text("x" * (MAX_CHARS + 1))
    with pytest.raises(KnowledgeError, match="--llm-url"):
        load_knowledge(path)


def test_invalid_yaml_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("a: [unclosed\n")
    with pytest.raises(KnowledgeError, match="not valid YAML"):
        load_knowledge(path)


def test_the_facts_follow_the_persona_so_the_cached_prefix_is_shared() -> None:
    prompt = system_prompt("You are a concierge.", "The pool opens at 7.")
    assert prompt.startswith("You are a concierge.") and prompt.endswith("The pool opens at 7.")
    assert system_prompt("You are a concierge.", None) == "You are a concierge."


BREAKFAST = Question("what time is breakfast", ("6:30", "six thirty"), ("breakfast",))


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Breakfast is served from 6:30 to 10:30 in the Garden Room.", (True, True, True, True)),
        ("We serve breakfast every morning.", (False, True, True, True)),
        ("We also have a few other bike shops nearby.", (False, False, True, True)),
        ("Breakfast is at 6:30. Breakfast is at 6:30. Breakfast is at 6:30.", (True, True, False, False)),
        ("Yes.", (False, False, True, False)),
    ],
)
def test_answers_are_scored_on_fact_topic_loops_and_length(answer: str, expected: tuple[bool, ...]) -> None:
    result = score(BREAKFAST, answer)
    assert (result["fact"], result["on_topic"], result["no_loop"], result["length"]) == expected


def test_the_benchmark_has_thirty_questions_whose_facts_are_in_the_sample_file() -> None:
    facts = load_knowledge(REPO / "examples" / "concierge.md").lower()
    assert len(QUESTIONS) >= 30
    for question in QUESTIONS:
        assert any(f.lower() in facts for f in question.facts if f not in ("yes", "no")), question.text


def test_the_facts_that_share_words_with_the_question_are_put_next_to_it() -> None:
    facts = facts_of(load_knowledge(REPO / "examples" / "concierge.md"))
    assert not any(f.startswith(("#", "-")) for f in facts), "headings dropped, list markers stripped"
    best = relevant_facts(facts, "um what's the wifi password")
    assert best[0] == "The wifi network is HarbourGuest and the password is seagull42."
    assert relevant_facts(facts, "hmm") == []
    assert user_message("hmm", []) == "hmm"
    assert user_message("wifi", best[:1]).endswith("(Relevant facts: " + best[0] + ")")
