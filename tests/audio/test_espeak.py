"""eSpeak NG through the wheel's library: speech with phoneme and word events at exact samples."""

from __future__ import annotations

import numpy as np

from presence.audio.espeak import Espeak, SpeechChunk, Voice


def test_a_sentence_comes_with_ordered_phonemes_and_words_inside_the_audio() -> None:
    speech = Espeak.instance().synthesize("Hello there, how can I help you?")
    assert speech.sample_rate == 22050
    assert 1.0 < len(speech.samples) / speech.sample_rate < 3.5
    offsets = [p.offset for p in speech.phonemes]
    assert offsets == sorted(offsets) and offsets[0] >= 0 and offsets[-1] < len(speech.samples)
    symbols = [p.symbol for p in speech.phonemes]
    assert symbols[:4] == ["h", "@", "l", "'oU"]  # "hello"
    text = "Hello there, how can I help you?"
    assert [text[w.start : w.start + w.length] for w in speech.words][:3] == ["Hello", "there", "how"]


def test_audio_at_a_phoneme_event_is_that_phonemes_sound() -> None:
    speech = Espeak.instance().synthesize("ma ma ma")
    vowel = next(p for p in speech.phonemes if "A" in p.symbol)
    window = speech.samples[vowel.offset + 300 : vowel.offset + 1300]
    assert np.sqrt(np.mean(window**2)) > 0.03, "a vowel is loud just after its event"


def test_a_faster_rate_gives_shorter_speech() -> None:
    espeak = Espeak.instance()
    slow = espeak.synthesize("This sentence is spoken twice.", Voice(rate_wpm=120))
    fast = espeak.synthesize("This sentence is spoken twice.", Voice(rate_wpm=300))
    assert len(fast.samples) < 0.6 * len(slow.samples)


def test_streaming_hands_over_small_chunks_and_stops_when_asked() -> None:
    chunks: list[SpeechChunk] = []

    def take_three(chunk: SpeechChunk) -> bool:
        chunks.append(chunk)
        return len(chunks) < 3

    finished = Espeak.instance().stream("One two three four five six seven eight.", Voice(), take_three)
    assert not finished
    assert len(chunks) == 3
    assert all(len(c.samples) <= 22050 * 0.07 for c in chunks)
    lengths = [len(c.samples) for c in chunks]
    assert [c.start_sample for c in chunks] == [0, lengths[0], lengths[0] + lengths[1]]
    # The library is usable again right after an aborted synthesis.
    assert len(Espeak.instance().synthesize("Again.").samples) > 0
