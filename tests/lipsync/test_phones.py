"""Phone → viseme mappings: the scoring reference (VISEMES.md) and the eSpeak table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from presence.audio.espeak import Espeak, Voice
from presence.lipsync import phones
from presence.lipsync.base import VISEMES


@pytest.mark.parametrize(
    ("arpabet", "viseme"),
    [("P", "PP"), ("M", "PP"), ("V", "FF"), ("DH", "TH"), ("T", "DD"), ("NG", "kk"), ("HH", "kk"),
     ("ZH", "CH"), ("Z", "SS"), ("L", "nn"), ("ER1", "RR"), ("AY2", "aa"), ("AW", "aa"), ("EY", "E"),
     ("Y", "ih"), ("OY", "oh"), ("W", "ou"), ("UH0", "ou")],
)  # fmt: skip
def test_arpabet_follows_the_reference_table_ignoring_stress(arpabet: str, viseme: str) -> None:
    assert phones.arpabet_to_viseme(arpabet) == viseme


@pytest.mark.parametrize(
    ("timit", "viseme"),
    [("h#", "sil"), ("pau", "sil"), ("epi", "sil"), ("q", "sil"), ("bcl", "PP"), ("tcl", "DD"),
     ("kcl", "kk"), ("dx", "DD"), ("nx", "nn"), ("ax-h", "aa"), ("ix", "ih"), ("ux", "ou"),
     ("axr", "RR"), ("el", "nn"), ("em", "PP"), ("en", "nn"), ("eng", "kk"), ("hv", "kk"),
     ("sh", "CH"), ("iy", "ih"), ("ao", "oh")],
)  # fmt: skip
def test_timit_closures_take_their_stops_posture_and_silences_are_sil(timit: str, viseme: str) -> None:
    assert phones.timit_to_viseme(timit) == viseme


def test_a_phone_outside_the_reference_is_an_error_not_a_guess() -> None:
    with pytest.raises(phones.UnknownPhoneError):
        phones.timit_to_viseme("zz")


def test_every_espeak_symbol_the_library_emits_for_english_is_known() -> None:
    phones.unknown_symbols.clear()
    text = (
        "The quick brown fox jumps over the lazy dog. Thousands of people joined the choir, "
        "singing with joy; why would you think about vision, azure or judge? Our tour near the pure cure."
    )
    seen: set[str] = set()
    for voice in ("en-us", "en", "en-GB-x-rp"):
        for phoneme in Espeak.instance().synthesize(text, Voice(voice)).phonemes:
            seen.add(phoneme.symbol)
            phones.espeak_shape(phoneme.symbol)
    assert len(seen) > 30
    assert not phones.unknown_symbols


@pytest.mark.parametrize(
    ("symbol", "onset", "glide"),
    [("'aI", "aa", "ih"), (",aU", "aa", "ou"), ("'oU", "oh", "ou"), ("'OI", "oh", "ih"),
     ("eI", "E", "ih"), ("'i:", "ih", None), ("@2", "aa", None), ("3:", "RR", None)],
)  # fmt: skip
def test_espeak_diphthongs_open_on_their_first_element_and_glide_to_the_second(
    symbol: str, onset: str, glide: str | None
) -> None:
    shape = phones.espeak_shape(symbol)
    assert shape is not None and (shape.onset, shape.glide) == (onset, glide)


def test_espeak_pauses_are_silence_and_stops_are_marked_as_stops() -> None:
    assert phones.espeak_shape("_:") == phones.PhoneShape("sil")
    assert phones.espeak_shape("_") == phones.PhoneShape("sil")
    for stop, viseme in [("p", "PP"), ("b", "PP"), ("t", "DD"), ("d", "DD"), ("k", "kk"), ("g", "kk")]:
        assert phones.espeak_shape(stop) == phones.PhoneShape(viseme, stop=True)
    assert phones.espeak_shape("m") == phones.PhoneShape("PP")


def test_marks_that_are_not_phones_keep_the_mouth() -> None:
    assert phones.espeak_shape(";") is None


def test_an_unknown_symbol_falls_back_and_is_counted() -> None:
    phones.unknown_symbols.clear()
    assert phones.espeak_shape("k2x") == phones.PhoneShape("kk", stop=True)  # longest known prefix
    assert phones.espeak_shape("o9") == phones.PhoneShape("oh")  # vowel quality of its first letter
    assert phones.espeak_shape("Q") == phones.PhoneShape(phones.UNKNOWN_VISEME)
    assert phones.unknown_symbols == {"k2x": 1, "o9": 1, "Q": 1}


def test_arpabet_marks_from_engines_get_shapes_with_glides_and_stops() -> None:
    assert phones.phone_shape("AY1", "arpabet") == phones.PhoneShape("aa", "ih")
    assert phones.phone_shape("B", "arpabet") == phones.PhoneShape("PP", stop=True)


@given(st.text(max_size=6), st.sampled_from(["espeak", "arpabet"]))
def test_any_symbol_maps_to_a_known_viseme_or_none_and_never_raises(symbol: str, alphabet: str) -> None:
    shape = phones.phone_shape(symbol, alphabet)
    assert shape is None or (shape.onset in VISEMES and (shape.glide is None or shape.glide in VISEMES))


def test_openness_and_coarse_classes_cover_every_viseme() -> None:
    assert set(phones.OPENNESS) == set(VISEMES)
    assert set(phones.COARSE_OF_VISEME.values()) == set(phones.COARSE_CLASSES)
