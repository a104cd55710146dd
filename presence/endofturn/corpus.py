"""Training material for the end-of-turn predictor: Switchboard text and eSpeak NG speech.

Switchboard (the sample in ../shared/data/switchboard-sample; Copyright (C) 2000 University of
Pennsylvania, used under the Open Content License, see its README) gives real conversational
utterances with their ends marked: a slash unit that ends in ``/`` is a complete utterance,
one that breaks off (``--``) is not, and every utterance cut at a word is not. eSpeak NG
speaks the same kind of turns with varied voices, rates and pitches, so the fusion learns
from sound it can hear without ever touching the evaluation corpus (TIMIT).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from presence.audio.espeak import Espeak, Voice
from presence.audio.pcm import Float32, resample
from presence.endofturn.text import words
from presence.media import INPUT_SAMPLE_RATE

REPO: Final = Path(__file__).resolve().parents[2]
DEFAULT_SWITCHBOARD: Final = (
    Path(os.environ.get("PRESENCE_DATA_DIR", REPO / ".." / "shared" / "data")) / "switchboard-sample"
)
_LINE: Final = re.compile(r"^(\S+)\s+([AB])\.(\d+)\s+utt\d+:\s*(.*)$")
_MARKUP: Final = re.compile(r"<[^>]*>|\{[A-Z]|[\[\]{}+#/]|--")
VOICES: Final = ("en-us", "en", "en-gb-x-rp", "en-us-nyc", "en-029", "en-gb-scotland")
VARIANTS: Final = ("", "+m1", "+m3", "+m7", "+f1", "+f2", "+f4", "+klatt", "+david", "+linda")


@dataclass(frozen=True, slots=True)
class Utterance:
    """One Switchboard slash unit, as ASR-style words; ``complete`` unless it broke off."""

    call: int
    speaker_turn: str  # e.g. "A.5": a change ends the speaker's turn
    tokens: tuple[str, ...]
    complete: bool


def read_switchboard(folder: Path = DEFAULT_SWITCHBOARD) -> list[Utterance]:
    """The ``discourse`` file's utterances, calls numbered by the blank lines between them."""
    path = folder / "discourse"
    if not path.is_file():
        raise SystemExit(f"training data missing: {path} (pass --switchboard or set PRESENCE_DATA_DIR)")
    out: list[Utterance] = []
    call = 0
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            call += 1
            continue
        match = _LINE.match(line.strip())
        if match is None:
            continue
        tag, speaker, turn, text = match.groups()
        tokens = tuple(words(_MARKUP.sub(" ", text)))
        if not tokens:
            continue
        ends = text.rstrip().endswith("/") and not text.rstrip().endswith("-/")
        out.append(Utterance(call, f"{speaker}.{turn}", tokens, ends and not tag.startswith("%")))
    return out


def text_examples(
    utterances: list[Utterance], rng: np.random.Generator, prefixes: int = 2
) -> list[tuple[tuple[str, ...], int]]:
    """(words, 1 if they end a complete utterance): every utterance whole, plus cuts at words."""
    out: list[tuple[tuple[str, ...], int]] = []
    for u in utterances:
        out.append((u.tokens, int(u.complete)))
        if len(u.tokens) >= 2:
            for k in rng.choice(np.arange(1, len(u.tokens)), size=min(prefixes, len(u.tokens) - 1), replace=False):
                out.append((u.tokens[: int(k)], 0))
    return out


def conversation_turns(utterances: list[Utterance], min_words: int = 3, max_words: int = 22) -> list[list[Utterance]]:
    """Each speaker turn's complete utterances of a speakable length (a turn is 1+ of them)."""
    turns: list[list[Utterance]] = []
    current: list[Utterance] = []
    key: tuple[int, str] | None = None
    for u in utterances:
        if (u.call, u.speaker_turn) != key:
            if current:
                turns.append(current)
            current, key = [], (u.call, u.speaker_turn)
        if u.complete and min_words <= len(u.tokens) <= max_words:
            current.append(u)
    if current:
        turns.append(current)
    return [t for t in turns if t]


@dataclass(frozen=True, slots=True)
class Spoken:
    """An utterance spoken by eSpeak NG at 16 kHz, trimmed; ``word_starts`` in samples."""

    audio: Float32
    word_starts: tuple[int, ...]


def speak(tokens: tuple[str, ...], voice: Voice) -> Spoken:
    espeak = Espeak.instance()
    synthesis = espeak.synthesize(" ".join(tokens), voice)
    audio = resample(synthesis.samples, synthesis.sample_rate, INPUT_SAMPLE_RATE)
    scale = INPUT_SAMPLE_RATE / synthesis.sample_rate
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    if len(loud) == 0:
        return Spoken(audio[:0], ())
    first, last = int(loud[0]), int(loud[-1]) + 1
    starts = sorted({max(0, round(w.offset * scale) - first) for w in synthesis.words})
    return Spoken(audio[first:last].copy(), tuple(s for s in starts if s < last - first))


def random_voice(rng: np.random.Generator) -> Voice:
    name = str(rng.choice(VOICES)) + str(rng.choice(VARIANTS))
    return Voice(name, int(rng.integers(130, 221)), int(rng.integers(25, 76)))
