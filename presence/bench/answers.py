"""``presence bench answers``: does the local engine's reply answer the question?

A fixed set of spoken-style questions (lower case, no punctuation, fillers: what the ASR
hands the model) about the sample venue of ``examples/concierge.md``, each with the fact its
answer must contain. Every answer is scored automatically:

- **fact**: one of the accepted spellings of the fact appears in the answer;
- **on topic**: the answer names the fact or one of the question's topic words;
- **no loop**: the repetition guard would not cut it, and no three words repeat;
- **length**: one to two sentences, 2 to 40 words (it is spoken).

Configurations, all measured in one run: the embedded model as it was (persona only,
temperature 0.6, no repetition penalty, no sentence limit); with the knowledge file in the
system prompt (greedy, penalty 1.2, stopped after two sentences); and as it is now, with the
facts that share the most words with the question also put next to it; with ``--llm-url``
the endpoint too, as now. Replies go through the engine's own reply path
(``ReplyText``: clauses, sentence limit), not a separate prompt.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from presence.bench._stats import summary, table, write_results
from presence.engines.local.clauses import clean_for_speech
from presence.engines.local.knowledge import facts_of, load_knowledge, relevant_facts, system_prompt, user_message
from presence.engines.local.llm import LanguageModel, LlamaModel, OpenAICompatibleModel
from presence.engines.local.repetition import cut_repetition
from presence.engines.local.reply import ReplyText

REPO = Path(__file__).resolve().parents[2]
KNOWLEDGE = REPO / "examples" / "concierge.md"
PERSONA: Final = "You are a friendly concierge. Answer in one or two short sentences."
MAX_WORDS: Final = 40


@dataclass(frozen=True, slots=True)
class Question:
    text: str  # as heard: lower case, no punctuation
    facts: tuple[str, ...]  # any one of these, normalised, must be in the answer
    topic: tuple[str, ...]  # words that show the answer is about the question


QUESTIONS: Final = [
    Question("what time is breakfast", ("6:30", "six thirty", "630"), ("breakfast",)),
    Question("um where is breakfast served", ("garden room",), ("breakfast", "served", "garden")),
    Question("is breakfast included with my room", ("included", "yes"), ("breakfast",)),
    Question("what time is check out", ("11", "eleven"), ("check", "out")),
    Question("can i get a late check out", ("1 pm", "1pm", "one", "20 euros", "20"), ("late", "check")),
    Question("when can i check in", ("3 pm", "3pm", "three", "3"), ("check",)),
    Question("what's the wifi password", ("seagull42", "seagull 42", "seagull"), ("wifi", "password")),
    Question("what is the name of the wifi network", ("harbourguest", "harbour guest"), ("wifi", "network")),
    Question(
        "how do i get to the train station from here",
        ("quay street", "left", "10 minute", "ten minute"),
        ("station", "train", "walk"),
    ),
    Question("how far is the train station", ("10", "ten"), ("station", "train", "walk")),
    Question("how do i get to the airport", ("taxi", "shuttle"), ("airport",)),
    Question("how much is a taxi to the airport", ("40", "forty"), ("taxi", "airport")),
    Question(
        "is there a shuttle bus to the airport",
        ("30 minutes", "every 30", "8 euros", "front door", "yes"),
        ("shuttle", "bus", "airport"),
    ),
    Question(
        "can you recommend a good place to eat nearby",
        ("marco", "trattoria", "lighthouse"),
        ("eat", "restaurant", "food"),
    ),
    Question("when does the restaurant open", ("6 pm", "6pm", "six"), ("restaurant", "lighthouse")),
    Question("what kind of food does the restaurant serve", ("seafood", "sea food"), ("restaurant", "food")),
    Question("until when can i order room service", ("11", "eleven"), ("room service",)),
    Question("where is the gym", ("second floor", "2nd floor", "second"), ("gym",)),
    Question("is the gym open at night", ("24 hours", "24", "twenty four", "yes"), ("gym", "open")),
    Question("what time does the pool open", ("7", "seven"), ("pool",)),
    Question("which floor is the pool on", ("fifth", "5th", "5"), ("pool", "floor")),
    Question("when does the spa close", ("8 pm", "8pm", "eight", "8"), ("spa",)),
    Question("where is the nearest pharmacy", ("market square",), ("pharmacy",)),
    Question("is the museum open on monday", ("closed", "no"), ("museum", "monday")),
    Question("could you recommend a good museum", ("maritime",), ("museum",)),
    Question("how far is the beach", ("15", "fifteen"), ("beach",)),
    Question("can i rent a bike", ("12", "twelve", "reception", "yes"), ("bike",)),
    Question("how much is parking", ("15", "fifteen"), ("parking", "park", "garage")),
    Question("can i bring my dog", ("10 euros", "10", "ten", "welcome", "yes"), ("dog", "pet")),
    Question("is there a cash machine", ("lobby",), ("cash", "machine", "atm")),
    Question("can i leave my luggage somewhere", ("reception", "free"), ("luggage", "bag", "store")),
    Question("what's the address of the hotel", ("12 quay street", "quay street"), ("address", "hotel")),
    Question("when do i have to hand in laundry", ("9 am", "9am", "nine", "9"), ("laundry",)),
]


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9:' ]", " ", text.lower().replace("-", " ")).split())


def _sentences(text: str) -> int:
    return max(1, len([s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]))


def score(question: Question, answer: str) -> dict[str, bool]:
    """The four checks for one answer (pure: the spec of a good spoken answer)."""
    heard = normalise(answer)
    words = heard.split()
    padded = f" {heard} "
    fact = any(f" {normalise(f)} " in padded or normalise(f) in heard.replace(" ", "") for f in question.facts)
    on_topic = fact or any(f" {normalise(t)}" in padded for t in question.topic)
    trigrams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    no_loop = cut_repetition(answer.strip()) == answer.strip() and len(set(trigrams)) == len(trigrams)
    length = 2 <= len(words) <= MAX_WORDS and _sentences(answer) <= 2
    return {"fact": fact, "on_topic": on_topic, "no_loop": no_loop, "length": length}


def on_topic(question_text: str, answer: str) -> bool:
    """For tests that ask one of these questions by voice: is the reply about it?"""
    question = next((q for q in QUESTIONS if q.text == question_text), None)
    if question is None:
        raise KeyError(f"not one of the benchmark's questions: {question_text!r}")
    return score(question, answer)["on_topic"]


async def answer(model: LanguageModel, system: str, question: str, max_sentences: int, facts: list[str]) -> str:
    asked = user_message(question, relevant_facts(facts, question))
    text = ReplyText(
        model,
        [{"role": "system", "content": system}, {"role": "user", "content": asked}],
        threading.Event(),
        max_sentences,
    )
    clauses = [clause async for clause in text.clauses()]
    return clean_for_speech(" ".join(clauses))


async def run_config(
    name: str, model: LanguageModel, system: str, max_sentences: int, facts: list[str], questions: list[Question]
) -> dict[str, Any]:
    await model.start()
    rows: list[dict[str, Any]] = []
    try:
        for question in questions:
            said = await answer(model, system, question.text, max_sentences, facts)
            rows.append({"question": question.text, "answer": said, **score(question, said)})
    finally:
        await model.stop()
    checks = ("fact", "on_topic", "no_loop", "length")
    totals = {check: round(100 * sum(r[check] for r in rows) / len(rows), 1) for check in checks}
    totals["all"] = round(100 * sum(all(r[c] for c in checks) for r in rows) / len(rows), 1)
    return {
        "config": name,
        "questions": len(rows),
        "pct": totals,
        "words": summary([len(r["answer"].split()) for r in rows], 1),
        "answers": rows,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="presence bench answers", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the first 5 questions")
    parser.add_argument("--knowledge", type=Path, default=KNOWLEDGE)
    parser.add_argument("--llm-url", help="also score this OpenAI-compatible endpoint")
    parser.add_argument("--llm-model", default="smollm2")
    parser.add_argument("--json")
    parser.add_argument("--md", default="docs/benchmarks/answers.md")
    args = parser.parse_args(argv)
    questions = QUESTIONS[:5] if args.quick else QUESTIONS
    knowledge = load_knowledge(args.knowledge)
    system, facts = system_prompt(PERSONA, knowledge), facts_of(knowledge)
    configs: list[tuple[str, LanguageModel, str, int, list[str]]] = [
        ("embedded, before (persona only)", LlamaModel(temperature=0.6, repeat_penalty=1.0), PERSONA, 99, []),
        ("embedded, knowledge in the system prompt only", LlamaModel(), system, 2, []),
        ("embedded, now (+ relevant facts by the question)", LlamaModel(), system, 2, facts),
    ]
    if args.llm_url:
        configs.append(
            (
                f"{args.llm_model} at --llm-url (as now)",
                OpenAICompatibleModel(args.llm_url, args.llm_model, None),
                system,
                2,
                facts,
            )
        )
    results = [asyncio.run(run_config(*config, questions)) for config in configs]
    rows = [
        {"config": r["config"], **{f"{k} %": v for k, v in r["pct"].items()}, "words p50": r["words"]["p50"]}
        for r in results
    ]
    examples = [
        f"- *{q['question']}* → before: “{b['answer']}” · now: “{q['answer']}”"
        for q, b in zip(results[2]["answers"][:6], results[0]["answers"][:6], strict=True)
    ]
    command = f"presence bench answers{' --quick' if args.quick else ''}"
    if args.llm_url:
        command += f" --llm-url {args.llm_url}"
    markdown = "\n\n".join(
        [
            "# Answers: does the reply answer the question?",
            f"Command: `{command}`. {len(questions)} spoken-style questions about `{args.knowledge.name}`; "
            "each answer scored for the fact it must contain, staying on topic, not looping, and length "
            "(1-2 sentences, 2-40 words). *all* = every check passed.",
            table(rows, [(k, k) for k in rows[0]]),
            "Examples:",
            "\n".join(examples),
        ]
    )
    write_results(
        {"suite": "answers", "command": command, "configs": results},
        markdown,
        args.json,
        Path(args.md) if args.md and not args.quick else None,
    )
    return 0
