"""Phone symbols → Oculus-15 visemes: TIMIT and ARPAbet exactly as VISEMES.md defines, eSpeak NG.

The TIMIT/ARPAbet tables are the scoring reference and must not drift from
``design/VISEMES.md``. The eSpeak table is the product's own: eSpeak NG English mnemonics
(as ``espeak_TextToPhonemes`` and the phoneme events spell them) mapped through their
ARPAbet equivalents, with diphthongs split into an onset viseme and an off-glide viseme so
the animator can glide between them.

Unknown symbols never raise: they map to ``UNKNOWN_VISEME`` (``nn``, a half-open neutral
mouth that looks plausible under any consonant or reduced vowel) and are counted in
``unknown_symbols`` so a new eSpeak release that renames phonemes shows up in the logs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Final

from presence.lipsync.base import VISEMES

SILENCE: Final = "sil"
UNKNOWN_VISEME: Final = "nn"

#: Reference openness per viseme (VISEMES.md, "Scoring"): used by the evaluation.
OPENNESS: Final[dict[str, float]] = {
    "sil": 0.0,
    "PP": 0.0,
    "FF": 0.15,
    "TH": 0.2,
    "DD": 0.25,
    "kk": 0.3,
    "CH": 0.25,
    "SS": 0.15,
    "nn": 0.25,
    "RR": 0.3,
    "aa": 1.0,
    "E": 0.6,
    "ih": 0.45,
    "oh": 0.7,
    "ou": 0.35,
}

#: Coarse mouth classes (VISEMES.md): what the eye can actually tell apart.
COARSE_CLASSES: Final[tuple[str, ...]] = ("rest", "closed", "labiodental", "teeth", "round", "open", "wide")
COARSE_OF_VISEME: Final[dict[str, str]] = {
    "sil": "rest",
    "PP": "closed",
    "FF": "labiodental",
    "TH": "teeth",
    "DD": "teeth",
    "kk": "teeth",
    "CH": "teeth",
    "SS": "teeth",
    "nn": "teeth",
    "RR": "round",
    "oh": "round",
    "ou": "round",
    "aa": "open",
    "E": "wide",
    "ih": "wide",
}

_ARPABET_GROUPS: Final[dict[str, tuple[str, ...]]] = {
    "PP": ("P", "B", "M"),
    "FF": ("F", "V"),
    "TH": ("TH", "DH"),
    "DD": ("T", "D"),
    "kk": ("K", "G", "NG", "HH"),
    "CH": ("CH", "JH", "SH", "ZH"),
    "SS": ("S", "Z"),
    "nn": ("N", "L"),
    "RR": ("R", "ER"),
    "aa": ("AA", "AE", "AH", "AY", "AW"),
    "E": ("EH", "EY"),
    "ih": ("IH", "IY", "Y"),
    "oh": ("AO", "OW", "OY"),
    "ou": ("UH", "UW", "W"),
}
#: ARPAbet (stress digits removed) → viseme. Silence symbols of common aligners included.
ARPABET_TO_VISEME: Final[dict[str, str]] = {
    phone: viseme for viseme, phones in _ARPABET_GROUPS.items() for phone in phones
} | {"SIL": SILENCE, "SP": SILENCE, "SPN": SILENCE, "PAU": SILENCE, "": SILENCE}

#: TIMIT phones that are not their own ARPAbet symbol; ``None`` means silence.
TIMIT_TO_ARPABET: Final[dict[str, str | None]] = {
    "h#": None,
    "pau": None,
    "epi": None,
    "q": None,
    "bcl": "B",
    "pcl": "P",
    "dcl": "D",
    "tcl": "T",
    "gcl": "G",
    "kcl": "K",
    "dx": "D",
    "nx": "N",
    "ax": "AH",
    "ax-h": "AH",
    "ix": "IH",
    "ux": "UW",
    "axr": "ER",
    "el": "L",
    "em": "M",
    "en": "N",
    "eng": "NG",
    "hv": "HH",
}


class UnknownPhoneError(ValueError):
    """A reference transcription holds a phone the scoring mapping does not define."""


def arpabet_to_viseme(phone: str) -> str:
    """Reference mapping; raises ``UnknownPhoneError`` (scoring must not guess)."""
    key = phone.strip().upper().rstrip("012")
    try:
        return ARPABET_TO_VISEME[key]
    except KeyError:
        raise UnknownPhoneError(f"ARPAbet phone {phone!r} has no viseme in VISEMES.md") from None


def timit_to_viseme(phone: str) -> str:
    """Reference mapping of one TIMIT phone (61-phone set) to its viseme."""
    key = phone.strip().lower()
    if key in TIMIT_TO_ARPABET:
        arpabet = TIMIT_TO_ARPABET[key]
        return SILENCE if arpabet is None else arpabet_to_viseme(arpabet)
    return arpabet_to_viseme(key)


@dataclass(frozen=True, slots=True)
class PhoneShape:
    """How one phone moves the mouth: the onset viseme, an optional off-glide, and whether
    it is a stop whose closure precedes its event (eSpeak marks stops at the burst)."""

    onset: str
    glide: str | None = None
    stop: bool = False


def _shape(onset: str, glide: str | None = None, stop: bool = False) -> PhoneShape:
    return PhoneShape(onset, glide, stop)


# eSpeak NG English phoneme mnemonics (phsource/ph_english*), after stress marks are removed.
_ESPEAK_SHAPES: Final[dict[str, PhoneShape]] = {
    # pauses
    "_": _shape(SILENCE),
    "_:": _shape(SILENCE),
    "_!": _shape(SILENCE),
    "_|": _shape(SILENCE),
    "?": _shape(SILENCE),  # glottal stop: TIMIT's q is silence too
    # stops (event at the burst; the closure lies before it)
    "p": _shape("PP", stop=True),
    "b": _shape("PP", stop=True),
    "t": _shape("DD", stop=True),
    "d": _shape("DD", stop=True),
    "k": _shape("kk", stop=True),
    "g": _shape("kk", stop=True),
    "tS": _shape("CH", stop=True),
    "dZ": _shape("CH", stop=True),
    "t#": _shape("DD"),  # flap: too short for a visible closure
    "d#": _shape("DD"),
    "t2": _shape("DD", stop=True),
    "t[": _shape("DD", stop=True),  # dental t before th ("at the")
    "d2": _shape("DD", stop=True),
    # nasals, liquids, glides
    "m": _shape("PP"),
    "m-": _shape("PP"),
    "n": _shape("nn"),
    "n-": _shape("nn"),
    "N": _shape("kk"),
    "l": _shape("nn"),
    "l-": _shape("nn"),
    "l/": _shape("nn"),
    "@L": _shape("nn"),  # syllabic l ("people"): TIMIT el → L
    "r": _shape("RR"),
    "r-": _shape("RR"),
    "R": _shape("RR"),
    "w": _shape("ou"),
    "W": _shape("ou"),
    "w#": _shape("ou"),
    "j": _shape("ih"),
    # fricatives
    "f": _shape("FF"),
    "v": _shape("FF"),
    "T": _shape("TH"),
    "D": _shape("TH"),
    "s": _shape("SS"),
    "z": _shape("SS"),
    "s#": _shape("SS"),
    "z#": _shape("SS"),
    "S": _shape("CH"),
    "Z": _shape("CH"),
    "h": _shape("kk"),
    "x": _shape("kk"),
    "C": _shape("kk"),
    # monophthongs
    "@": _shape("aa"),
    "@2": _shape("aa"),
    "@5": _shape("aa"),
    "a#": _shape("aa"),
    "V": _shape("aa"),
    "a": _shape("aa"),
    "aa": _shape("aa"),
    "A:": _shape("aa"),
    "A#": _shape("aa"),
    "0": _shape("aa"),  # en-us lot vowel is AA
    "3": _shape("RR"),  # r-coloured schwa (ER)
    "3:": _shape("RR"),
    "E": _shape("E"),
    "e": _shape("E"),
    "i": _shape("ih"),
    "i:": _shape("ih"),
    "I": _shape("ih"),
    "I2": _shape("ih"),
    "I#": _shape("ih"),
    "O": _shape("oh"),
    "O:": _shape("oh"),
    "O2": _shape("oh"),
    "U": _shape("ou"),
    "u:": _shape("ou"),
    "u": _shape("ou"),
    # diphthongs and r-coloured vowels: onset as ARPAbet says, glide to the second element
    "aI": _shape("aa", "ih"),
    "aI2": _shape("aa", "ih"),
    "aI@": _shape("aa", "aa"),
    "aI3": _shape("aa", "RR"),
    "aU": _shape("aa", "ou"),
    "aU@": _shape("aa", "aa"),
    "eI": _shape("E", "ih"),
    "OI": _shape("oh", "ih"),
    "oU": _shape("oh", "ou"),
    "o@": _shape("oh", "RR"),
    "O@": _shape("oh", "RR"),
    "A@": _shape("aa", "RR"),
    "e@": _shape("E", "RR"),
    "i@": _shape("ih", "aa"),
    "i@3": _shape("ih", "RR"),
    "U@": _shape("ou", "RR"),
    "IR": _shape("ih", "RR"),  # en-GB-scotland keeps the r
    "VR": _shape("aa", "RR"),
}

#: Marks that carry no phone of their own (eSpeak emits ';' for palatalisation).
_ESPEAK_NON_PHONES: Final = frozenset({";", "", "||", "|"})
_STRESS_MARKS: Final = "',%=ˈˌ"
_VOWEL_FALLBACK: Final[dict[str, str]] = {
    "a": "aa",
    "A": "aa",
    "@": "aa",
    "V": "aa",
    "0": "aa",
    "e": "E",
    "E": "E",
    "i": "ih",
    "I": "ih",
    "o": "oh",
    "O": "oh",
    "u": "ou",
    "U": "ou",
    "3": "RR",
}

unknown_symbols: Counter[str] = Counter()


def strip_stress(symbol: str) -> str:
    return symbol.strip().lstrip(_STRESS_MARKS)


def espeak_shape(symbol: str) -> PhoneShape | None:
    """Shape of one eSpeak mnemonic; ``None`` for marks that are not phones (keep the mouth).

    Unknown symbols fall back on their longest known prefix (eSpeak adds variant suffixes
    like ``#``, ``-`` or digits), then on their first character's vowel quality, then on
    ``UNKNOWN_VISEME``; each such symbol is counted in ``unknown_symbols``.
    """
    key = strip_stress(symbol)
    if key in _ESPEAK_NON_PHONES:
        return None
    shape = _ESPEAK_SHAPES.get(key)
    if shape is not None:
        return shape
    unknown_symbols[key] += 1
    for end in range(len(key) - 1, 0, -1):
        shape = _ESPEAK_SHAPES.get(key[:end])
        if shape is not None:
            return shape
    return _shape(_VOWEL_FALLBACK.get(key[0], UNKNOWN_VISEME))


def arpabet_shape(phone: str) -> PhoneShape | None:
    """Shape of one ARPAbet phone (for engines that give phones); unknown → ``UNKNOWN_VISEME``."""
    key = phone.strip().upper().rstrip("012")
    if not key:
        return None
    viseme = ARPABET_TO_VISEME.get(key)
    if viseme is None:
        unknown_symbols[key] += 1
        viseme = UNKNOWN_VISEME
    glide = {"AY": "ih", "AW": "ou", "EY": "ih", "OY": "ih", "OW": "ou"}.get(key)
    return _shape(viseme, glide, stop=key in {"P", "B", "T", "D", "K", "G", "CH", "JH"})


def phone_shape(symbol: str, alphabet: str) -> PhoneShape | None:
    """Shape of a ``PhonemeMark``'s symbol in its alphabet (``"espeak"`` or ``"arpabet"``)."""
    if alphabet == "arpabet":
        return arpabet_shape(symbol)
    return espeak_shape(symbol)


assert set(OPENNESS) == set(VISEMES) == set(COARSE_OF_VISEME)
assert all(s.onset in OPENNESS and (s.glide is None or s.glide in OPENNESS) for s in _ESPEAK_SHAPES.values())


#: eSpeak NG English mnemonics → the ARPAbet phones of pocketsphinx's acoustic model, for
#: aligning a reply's text to its audio. Diphthongs are one model phone when ARPAbet has one
#: (aI → AY); r-coloured vowels are the vowel then R. Pauses are SIL.
_ESPEAK_TO_ARPABET: Final[dict[str, tuple[str, ...]]] = {
    "_": ("SIL",), "_:": ("SIL",), "_!": ("SIL",), "_|": ("SIL",), "?": (),
    "p": ("P",), "b": ("B",), "t": ("T",), "d": ("D",), "k": ("K",), "g": ("G",),
    "tS": ("CH",), "dZ": ("JH",), "t#": ("D",), "d#": ("D",), "t2": ("T",), "t[": ("T",), "d2": ("D",),
    "m": ("M",), "m-": ("M",), "n": ("N",), "n-": ("N",), "N": ("NG",),
    "l": ("L",), "l-": ("L",), "l/": ("L",), "@L": ("AH", "L"),
    "r": ("R",), "r-": ("R",), "R": ("R",), "w": ("W",), "W": ("W",), "w#": ("W",), "j": ("Y",),
    "f": ("F",), "v": ("V",), "T": ("TH",), "D": ("DH",), "s": ("S",), "z": ("Z",), "s#": ("S",),
    "z#": ("Z",), "S": ("SH",), "Z": ("ZH",), "h": ("HH",), "x": ("K",), "C": ("HH",),
    "@": ("AH",), "@2": ("AH",), "@5": ("AH",), "a#": ("AH",), "V": ("AH",), "a": ("AE",),
    "aa": ("AE",), "A:": ("AA",), "A#": ("AA",), "0": ("AA",), "3": ("ER",), "3:": ("ER",),
    "E": ("EH",), "e": ("EH",), "i": ("IY",), "i:": ("IY",), "I": ("IH",), "I2": ("IH",),
    "I#": ("IH",), "O": ("AO",), "O:": ("AO",), "O2": ("AO",), "U": ("UH",), "u:": ("UW",), "u": ("UW",),
    "aI": ("AY",), "aI2": ("AY",), "aI@": ("AY", "ER"), "aI3": ("AY", "ER"), "aU": ("AW",),
    "aU@": ("AW", "ER"), "eI": ("EY",), "OI": ("OY",), "oU": ("OW",), "o@": ("AO", "R"),
    "O@": ("AO", "R"), "A@": ("AA", "R"), "e@": ("EH", "R"), "i@": ("IY", "ER"), "i@3": ("IY", "ER"),
    "U@": ("UH", "R"), "IR": ("IH", "R"), "VR": ("AH", "R"),
}  # fmt: skip


def espeak_arpabet(symbol: str) -> tuple[str, ...]:
    """Model phones for one eSpeak mnemonic (``()`` for marks that are no phone); unknown
    symbols go through ``espeak_shape``'s fallbacks to the first phone of their viseme."""
    key = strip_stress(symbol)
    if key in _ESPEAK_NON_PHONES:
        return ()
    phones = _ESPEAK_TO_ARPABET.get(key)
    if phones is not None:
        return phones
    for end in range(len(key) - 1, 0, -1):
        phones = _ESPEAK_TO_ARPABET.get(key[:end])
        if phones is not None:
            return phones
    shape = espeak_shape(key)
    viseme = shape.onset if shape is not None else UNKNOWN_VISEME
    return (_ARPABET_GROUPS[viseme][0],) if viseme != SILENCE else ("SIL",)


#: ARPAbet phones' off-glides (the model's diphthongs), as ``arpabet_shape`` has them.
ARPABET_GLIDE: Final[dict[str, str]] = {"AY": "ih", "AW": "ou", "EY": "ih", "OY": "ih", "OW": "ou"}

assert set(_ESPEAK_TO_ARPABET) == set(_ESPEAK_SHAPES)
assert all(p in ARPABET_TO_VISEME for ps in _ESPEAK_TO_ARPABET.values() for p in ps)
