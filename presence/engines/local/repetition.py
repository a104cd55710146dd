"""Cutting Whisper's repetition loops out of a transcript.

Pure: text in, text out. When the encoder sees only the turn's audio (not a 30 s window) the
decoder often runs past the end of the speech and says it again ("… all year. She had your"),
or loops on a phrase ("very awkward, very awkward, …"). Three rules, each a cut point; the
earliest wins:

1. a run of two or more words said again at once (cut where the first run ends, preferring a
   pause in punctuation), or one word three times;
2. a run of four or more words said again later;
3. after a sentence end, the transcript's own beginning again, cut short by the token cap
   (possibly mid-word) or three words or more.
"""

from __future__ import annotations

import re
from typing import Final

_SENTENCE_END: Final = re.compile(r"[.?!]$")
_PAUSE: Final = re.compile(r"[.?!,;:]$")
_LONG_RUN: Final = 4


def _key(word: str) -> str:
    return re.sub(r"[^a-z0-9']", "", word.lower())


def _repeats(keys: list[str], i: int, size: int) -> bool:
    """True when the ``size`` words from ``i`` repeat the ``size`` words before ``i``."""
    return i >= size and i + size <= len(keys) and keys[i : i + size] == keys[i - size : i]


def _immediate_repeat(words: list[str], keys: list[str]) -> int:
    for i in range(1, len(keys)):
        if i >= 2 and keys[i] and keys[i] == keys[i - 1] == keys[i - 2]:
            return i - 1
        size = next((s for s in range(2, i + 1) if _repeats(keys, i, s)), 0)
        if size:
            # The repeated unit can be read from several offsets; end it where speech pauses.
            aligned = [j for j in range(i, i + size) if _repeats(keys, j, size) and _PAUSE.search(words[j - 1])]
            return aligned[0] if aligned else i
    return len(keys)


def _later_repeat(keys: list[str], end: int) -> int:
    seen: dict[tuple[str, ...], int] = {}
    for i in range(end - _LONG_RUN + 1):
        run = tuple(keys[i : i + _LONG_RUN])
        if run in seen and seen[run] + _LONG_RUN <= i:
            return i
        seen.setdefault(run, i)
    return end


def _restart(words: list[str], keys: list[str], end: int) -> int:
    for i in range(1, end):
        if not _SENTENCE_END.search(words[i - 1]):
            continue
        tail = keys[i:end]
        if not tail or len(tail) >= i:
            continue
        # A finished short sentence ("Where is it? Where?") is speech; a cut-off one is the loop.
        cut_off = not _SENTENCE_END.search(words[end - 1]) or len(tail) >= 3
        if cut_off and keys[: len(tail) - 1] == tail[:-1] and keys[len(tail) - 1].startswith(tail[-1]):
            return i
    return end


def cut_repetition(text: str) -> str:
    """``text`` up to the first place where it starts repeating itself."""
    words = text.split()
    keys = [_key(w) for w in words]
    end = _immediate_repeat(words, keys)
    end = _later_repeat(keys, end)
    end = _restart(words, keys, end)
    return " ".join(words[:end]).rstrip(",;:")
