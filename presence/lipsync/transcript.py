"""The reply's text as it streams in → the phones to align, word by word (eSpeak NG).

Engines send the agent's transcript as a growing string. Only complete words are turned
into phones (a word is complete once a space or punctuation follows it, or the text is
final), in batches: eSpeak NG speaks each batch of new words silently into its phoneme
events, so the phones are the ones the product's own voice would use, and each belongs to
the word whose event precedes it. An optional pause goes between words.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Final

from presence.lipsync.decoder import TextPhone
from presence.lipsync.phones import espeak_arpabet

log = logging.getLogger(__name__)

#: text → (word index in that text, eSpeak mnemonic) per phone, in order.
Phonemizer = Callable[[str], list[tuple[int, str]]]

_WORD_END: Final = re.compile(r"[\s.,;:!?\"()\[\]]")


def espeak_phonemize(text: str) -> list[tuple[int, str]]:
    """eSpeak NG's phonemes for ``text`` (en-us), each with the index of the word it is in."""
    from presence.audio.espeak import Espeak

    speech = Espeak.instance().synthesize(text)
    word_offsets = [w.offset for w in speech.words]
    out: list[tuple[int, str]] = []
    for mark in speech.phonemes:
        word = sum(1 for offset in word_offsets if offset <= mark.offset) - 1
        out.append((max(word, 0), mark.symbol))
    return out


class TranscriptPhones:
    """Turns the cumulative reply text into ``TextPhone``s for the words completed since."""

    def __init__(self, phone_index: dict[str, int], phonemize: Phonemizer = espeak_phonemize) -> None:
        self.phone_index = phone_index
        self.silence = phone_index["SIL"]
        self.phonemize = phonemize
        self.reset()

    def reset(self) -> None:
        self._text = ""
        self._done = 0  # characters of _text already turned into phones
        self.words = 0  # word index of the last phone made (pauses included)
        self.words_spoken = 0  # words of the text turned into phones
        self.failures = 0
        self._ended = False

    def update(self, text: str, final: bool) -> list[TextPhone]:
        """Phones of the words completed by this version of the text (the whole reply so far).

        Text that rewrites what was already used is taken from the first changed character
        on (what was aligned stays aligned)."""
        common = 0
        for a, b in zip(self._text, text, strict=False):
            if a != b:
                break
            common += 1
        self._text = text
        start = min(self._done, common)
        if final:
            end = len(text)
        else:
            ends = [m.start() for m in _WORD_END.finditer(text, start)]
            end = ends[-1] if ends else start
        chunk = text[start:end]
        self._done = max(end, start)
        if not chunk.strip():
            if final and self.words and not self._ended:
                self._ended = True
                self.words += 1
                return [TextPhone(self.silence, self.words)]
            return []
        try:
            marks = self.phonemize(chunk)
        except Exception as exc:  # eSpeak missing or failing: the audio decoder carries on alone
            self.failures += 1
            log.warning("lip-sync cannot phonemize the transcript: %s", exc)
            return []
        phones = self._phones(marks)
        if final and not self._ended:
            self._ended = True  # the reply ends in silence: a pause that may last
            self.words += 1
            phones.append(TextPhone(self.silence, self.words))
        return phones

    def _phones(self, marks: list[tuple[int, str]]) -> list[TextPhone]:
        phones: list[TextPhone] = []
        current = -1
        for word, symbol in marks:
            models = [p for p in espeak_arpabet(symbol) if p != "SIL"]
            if not models:
                continue
            if word != current:
                current = word
                self.words += 1
                self.words_spoken += 1
                phones.append(TextPhone(self.silence, self.words, optional=True))
                first = True
            else:
                first = False
            for i, phone in enumerate(models):
                index = self.phone_index.get(phone)
                if index is not None:
                    phones.append(TextPhone(index, self.words, word_start=first and i == 0))
        return phones
