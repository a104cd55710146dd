"""The lip-sync benchmark's transcripts: degraded as documented, delivered when they say."""

from __future__ import annotations

import numpy as np

from presence.bench.lipsync import Recording
from presence.bench.lipsync_aligned import CHANGED_WORDS, text_events, transcripts
from presence.lipsync.scoring import PhoneSegment


def recording(name: str, words: list[str]) -> Recording:
    segments = tuple(PhoneSegment(1000 * i, 1000 * (i + 1), w) for i, w in enumerate(words))
    return Recording(name, np.zeros(1000 * len(words), np.float32), 16000, [], " ".join(words), segments)


def test_every_tenth_word_of_the_corpus_is_dropped_or_changed_in_turn() -> None:
    corpus = [recording("a", [f"w{i}" for i in range(7)]), recording("b", [f"w{i}" for i in range(7, 30)])]
    clean = transcripts(corpus, degrade=False)
    assert [w for t in clean for w in t.words] == [f"w{i}" for i in range(30)]
    spoken = [w for t in transcripts(corpus, degrade=True) for w in t.words]
    assert "w9" not in spoken and "w29" not in spoken, "the 10th and 30th words are dropped"
    assert "w19" not in spoken and spoken[18] in CHANGED_WORDS, "the 20th is changed"
    assert len(spoken) == 28


def test_words_are_sent_with_their_audio_or_after_it_as_cumulative_text() -> None:
    script = transcripts([recording("a", ["she", "had", "your"])], degrade=False)[0]
    assert text_events(script, "upfront", 16000, 3000) == [(0, "she had your", True)]
    assert text_events(script, "with", 16000, 3000) == [
        (0, "she", False),
        (1000, "she had", False),
        (2000, "she had your", False),
        (3000, "she had your", True),
    ]
    assert [at for at, _, _ in text_events(script, "late", 16000, 3000)] == [1000, 2000, 3000, 3000]
