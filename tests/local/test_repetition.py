"""Whisper's repetition loops are cut; ordinary transcripts pass untouched (a table as the spec)."""

from __future__ import annotations

import pytest

from presence.engines.local.repetition import cut_repetition

CASES = [
    # (decoder output, transcript kept) — the loops are real outputs of the trimmed encoder
    (
        "She had your dark suit in greasy wash water all year. She had",
        "She had your dark suit in greasy wash water all year.",
    ),
    ("Norweg and sweaters are made of lamas wool. Norwe", "Norweg and sweaters are made of lamas wool."),
    ("It was awkward, very awkward, very awkward, very awkward", "It was awkward, very awkward"),
    ("as we ate we talked, as we ate we talked, as we", "as we ate we talked"),
    ("Marksmanship example, Marksmanship example, Marks", "Marksmanship example"),
    ("The Paper Boy Boy Boy 2 Apples", "The Paper Boy"),
    (
        "Ran away in a black night with a lawful wedding men. Ran away in a black night",
        "Ran away in a black night with a lawful wedding men.",
    ),
    # not loops
    ("No, no. I said no.", "No, no. I said no."),
    ("Where is the station? Where?", "Where is the station? Where?"),
    ("Can you recommend a good place to eat nearby?", "Can you recommend a good place to eat nearby?"),
    ("", ""),
]


@pytest.mark.parametrize(("raw", "kept"), CASES)
def test_repetition_loops_are_cut_and_speech_is_kept(raw: str, kept: str) -> None:
    assert cut_repetition(raw) == kept


@pytest.mark.parametrize(("raw", "kept"), CASES)
def test_cutting_is_idempotent(raw: str, kept: str) -> None:
    assert cut_repetition(cut_repetition(raw)) == kept
