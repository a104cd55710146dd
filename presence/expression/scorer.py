"""Reply text → the facial expression each clause should wear, before the clause is heard.

Pure and clock-free. A clause is scored by VADER (a lexicon and rule model whose word list
ships inside the ``vaderSentiment`` wheel, so nothing is downloaded) for how positive or
negative it is, and by a few rules for what a lexicon misses: a question raises the brows
(``curious``), surprise words and hedges have their own faces (``surprised``, ``thinking``),
and an exclamation or an imperative warning without much sentiment is ``emphasis``. Negation
("not happy") is handled by VADER's own rules. The rules are tables below; the agreement with
a hand-labelled set is ``python -m presence.expression``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Final

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

EXPRESSIONS: Final = ("neutral", "happy", "concerned", "surprised", "curious", "thinking", "emphasis")

HAPPY_AT: Final = 0.3  # VADER compound score at or above which a clause reads as happy
CONCERNED_AT: Final = -0.25  # … at or below which it reads as concerned

#: Words and phrases that mark surprise whatever their sentiment (lower case, whole words).
SURPRISE: Final = (
    "wow", "whoa", "oh", "no way", "goodness", "surprise", "surprised", "surprising",
    "unexpected", "didn't expect", "did not expect", "can't believe", "cannot believe", "no idea",
    "seriously", "incredible", "unbelievable", "already",
)  # fmt: skip
#: Apologies and regret: VADER scores "sorry" as near neutral, a listener hears concern.
REGRET: Final = ("sorry", "i'm afraid", "i am afraid", "regret")
#: Hedges: the speaker is still working it out.
THINKING: Final = (
    "hmm", "let me think", "let me check", "let me see", "i wonder", "perhaps", "maybe", "not sure",
    "i think", "depends", "look that up", "double check", "give me a moment", "might", "well,",
)  # fmt: skip
#: Words that make a sentiment-neutral clause a stressed instruction or warning.
EMPHATIC: Final = (
    "must", "never", "always", "do not", "don't", "important", "absolutely", "remember", "careful",
    "carefully", "stop", "no exceptions", "sharp", "matters",
)  # fmt: skip
#: First words of a question said without a question mark (a streamed clause may lack it).
QUESTION_OPENERS: Final = (
    "what", "when", "where", "which", "who", "whom", "whose", "why", "how", "do", "does", "did",
    "would", "could", "shall", "should", "can", "is", "are", "will",
)  # fmt: skip

_CLAUSE_END = re.compile(r"(?<=[.!?;:])\s+|(?<=[.!?;:])$")


@dataclass(frozen=True, slots=True)
class Expression:
    name: str
    intensity: float  # 0 … 1


@cache
def _analyzer() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()  # reads the lexicon from the wheel once


def _has(text: str, phrases: tuple[str, ...]) -> bool:
    return any(re.search(r"(?<![\w'])" + re.escape(p) + r"(?![\w'])", text) for p in phrases)


def split_clauses(text: str) -> list[str]:
    """Sentence-like pieces ending in . ! ? ; or : (a trailing piece without one is kept)."""
    return [piece.strip() for piece in _CLAUSE_END.split(text) if piece.strip()]


def is_question(clause: str) -> bool:
    words = clause.lower().split()
    exclamative = words[:2] in (["what", "a"], ["what", "an"])  # "What a day!"
    opener = (
        bool(words) and words[0] in QUESTION_OPENERS and not exclamative and not clause.rstrip().endswith((".", "!"))
    )
    return clause.rstrip().endswith("?") or opener


def score(clause: str) -> Expression:
    """The expression for one clause, with an intensity in [0, 1]."""
    text = clause.strip().lower()
    if not text:
        return Expression("neutral", 0.0)
    compound = float(_analyzer().polarity_scores(clause)["compound"])
    exclaimed = text.endswith("!")
    strength = min(1.0, abs(compound) + (0.15 if exclaimed else 0.0))
    surprise_word = _has(text, SURPRISE) and (exclaimed or text.endswith("?") or compound > -0.4)
    if text.startswith("really") or surprise_word:
        return Expression("surprised", max(0.5, strength))
    if is_question(clause):
        return Expression("curious", 0.6)
    if _has(text, THINKING) and compound < 0.5:
        return Expression("thinking", 0.6)
    if _has(text, EMPHATIC) and abs(compound) < 0.5:
        return Expression("emphasis", 0.7 if exclaimed else 0.5)
    if _has(text, REGRET) and compound < HAPPY_AT:
        return Expression("concerned", max(0.5, strength))
    if compound >= HAPPY_AT:
        return Expression("happy", max(0.35, strength))
    if compound <= CONCERNED_AT:
        return Expression("concerned", max(0.35, strength))
    if exclaimed or _has(text, EMPHATIC):
        return Expression("emphasis", 0.7 if exclaimed else 0.5)
    return Expression("neutral", 0.0)
