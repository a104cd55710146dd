"""One reply's expression track: its text as it streams → ``expression`` cues on the output timeline.

Pure and clock-free; ``ReplyStream`` owns one per reply when the client negotiated the
``expressions`` feature. Text comes from one of two sources, whichever speaks first:

- the words carried by the audio chunks (local and scripted engines): each word's timeline
  sample is known, so a clause's cue is placed at the sample where its first word starts;
- the reply's running transcript (cloud engines), which arrives ahead of its audio: a clause
  starting at character ``c`` of the reply is placed ``c / CHARS_PER_S`` seconds into the
  reply (an ordinary speaking rate), and never before the audio produced so far.

A clause is scored as soon as its first ``PREDICT_WORDS`` words are in (the face prepares
before the clause is heard, as people do) and again when it ends; the second score is sent only
when it names another expression. Cues go out with the audio they precede, so they reach the
client before that audio plays; the client ramps in over ``ramp_ms`` ending at ``at``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from presence.expression.blendshapes import arkit_weights
from presence.expression.scorer import Expression, score

PREDICT_WORDS: Final = 3
RAMP_MS: Final = 250
RELAX_MS: Final = 400  # after the reply, back to neutral over this long
CHARS_PER_S: Final = 15.0  # ~170 words a minute, spaces included
MAX_TEXT_CHARS: Final = 20_000  # a runaway reply stops producing cues rather than growing without bound
_ENDS: Final = (".", "!", "?", ";", ":")


@dataclass(frozen=True, slots=True)
class ExpressionCue:
    expression: Expression
    at_sample: int  # output timeline sample where the clause starts
    clause: str
    ramp_ms: int = RAMP_MS

    def to_json(self, turn_id: int) -> dict[str, Any]:
        """The ``expression`` event body (docs/protocol.md)."""
        e = self.expression
        return {
            "type": "expression",
            "name": e.name,
            "intensity": round(e.intensity, 3),
            "at": self.at_sample,
            "ramp_ms": self.ramp_ms,
            "turn_id": turn_id,
            "weights": arkit_weights(e.name, e.intensity),
        }


@dataclass
class _Clause:
    words: list[str] = field(default_factory=list)
    at_sample: int = 0
    sent: str | None = None  # the expression name already sent for this clause


class ExpressionTrack:
    def __init__(self, start_sample: int = 0, sample_rate: int = 24_000) -> None:
        self._start = start_sample
        self._rate = sample_rate
        self._source: str | None = None  # "chunks" or "transcript", fixed by the first text seen
        self._clause = _Clause()
        self._transcript_done = 0  # characters of the transcript already split into clauses
        self._last_at = 0
        self._chars = 0

    def chunk_words(self, text: str, at_sample: int) -> list[ExpressionCue]:
        """Words of an audio chunk that starts at ``at_sample``."""
        if not text.strip() or self._source == "transcript":
            return []
        self._source = "chunks"
        out: list[ExpressionCue] = []
        for word in text.split():
            out += self._word(word, at_sample)
        return out

    def transcript(self, text: str, final: bool, end_sample: int) -> list[ExpressionCue]:
        """The reply's transcript so far; ``end_sample`` is the end of the audio produced yet."""
        if self._source == "chunks" or not text.strip():
            return []
        self._source = "transcript"
        out: list[ExpressionCue] = []
        if len(text) < self._transcript_done:  # a revised transcript: start over where it now ends
            self._transcript_done = len(text)
            self._clause = _Clause()
            return out
        offset = self._transcript_done  # character position of the first fresh word
        fresh, self._transcript_done = text[offset:], len(text)
        # A word is complete once whitespace follows it; the last one waits unless the text is final.
        words = fresh.split(" ")
        if not final and not fresh.endswith(" "):
            self._transcript_done -= len(words[-1])
            words = words[:-1]
        for word in words:
            estimate = self._start + int(offset / CHARS_PER_S * self._rate)
            if word.strip():
                out += self._word(word.strip(), max(end_sample, estimate))
            offset += len(word) + 1
        return out + (self.finish() if final else [])

    def finish(self) -> list[ExpressionCue]:
        """The reply's text is complete: a trailing clause without end punctuation still counts."""
        return self._close()

    def relax(self, end_sample: int) -> ExpressionCue:
        """Back to neutral as the reply's last sample is heard."""
        return ExpressionCue(Expression("neutral", 0.0), max(end_sample, self._last_at), "", RELAX_MS)

    def _word(self, word: str, at_sample: int) -> list[ExpressionCue]:
        self._chars += len(word) + 1
        if self._chars > MAX_TEXT_CHARS:
            return []
        clause = self._clause
        if not clause.words:
            clause.at_sample = max(at_sample, self._last_at)
        clause.words.append(word)
        if word.endswith(_ENDS):
            return self._close()
        if len(clause.words) == PREDICT_WORDS:
            return self._cue(complete=False)
        return []

    def _close(self) -> list[ExpressionCue]:
        out = self._cue(complete=True) if self._clause.words else []
        self._clause = _Clause()
        return out

    def _cue(self, complete: bool) -> list[ExpressionCue]:
        clause = self._clause
        text = " ".join(clause.words)
        expression = score(text)
        if expression.name == clause.sent:
            return []
        if not complete and expression.name == "neutral" and clause.sent is None:
            return []  # three neutral words predict little: wait for the clause's end
        clause.sent = expression.name
        self._last_at = clause.at_sample
        return [ExpressionCue(expression, clause.at_sample, text)]
