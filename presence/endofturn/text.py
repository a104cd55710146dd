"""Is this transcript a complete thought? A logistic model over its last few words.

A pause after "she had your dark suit in" is not an end of turn whatever the voice does; after
"all year" it may be. What decides it is mostly the last one to three words (a dangling
article, preposition or conjunction), so the model is a sparse logistic regression over the
last word, bigram and trigram, trained on Switchboard utterance ends against the same
utterances cut at a word (``python -m presence.endofturn.train``). Input is normalised the
way ASR output differs from text: lower case, no punctuation, so Whisper's habit of closing
every fragment with a full stop tells the model nothing.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

WEIGHTS: Final = Path(__file__).with_name("weights") / "text.json"
_TOKEN: Final = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
LOGIT_CLIP: Final = 8.0


def words(transcript: str) -> list[str]:
    """Lower-case word tokens; apostrophes inside a word are kept (don't, it's)."""
    return _TOKEN.findall(transcript.lower().replace("’", "'"))


def features(tokens: list[str]) -> list[str]:
    """The sparse features of a word sequence: the bias and the last one, two and three words."""
    out = ["bias"]
    if not tokens:
        return [*out, "empty"]
    out.append("w1=" + tokens[-1])
    if len(tokens) >= 2:
        out.append("w2=" + " ".join(tokens[-2:]))
        out.append("p1=" + tokens[-2])
    else:
        out.append("single")
    if len(tokens) >= 3:
        out.append("w3=" + " ".join(tokens[-3:]))
    return out


@dataclass(slots=True)
class TextCompleteness:
    """``logit(words)``: log-odds that the words end a complete utterance."""

    weights: dict[str, float]
    _cache: dict[str, float] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: Path = WEIGHTS) -> TextCompleteness:
        data = json.loads(path.read_text())
        return cls({str(k): float(v) for k, v in data["weights"].items()})

    def logit(self, transcript: str) -> float:
        cached = self._cache.get(transcript)
        if cached is not None:
            return cached
        z = sum(self.weights.get(f, 0.0) for f in features(words(transcript)))
        z = max(-LOGIT_CLIP, min(LOGIT_CLIP, z))
        if len(self._cache) > 256:  # transcripts repeat within a turn, not across turns
            self._cache.clear()
        self._cache[transcript] = z
        return z

    def probability(self, transcript: str) -> float:
        return 1.0 / (1.0 + math.exp(-self.logit(transcript)))
