"""eSpeak NG through ctypes, from the ``espeakng-loader`` wheel (library and data included).

Speech comes out in small chunks as it is synthesized, each with the phonemes and words that
start inside it, at exact sample offsets: lip-sync needs no look-ahead beyond the chunk.

libespeak-ng keeps global state, so one synthesis runs at a time per process: ``Espeak``
is a process-wide singleton whose calls serialise on a lock. Synthesis is fast (well over
ten times real time), so callers run it in a worker thread and stream what it yields;
``on_chunk`` returning False aborts at the next chunk (barge-in).
"""

from __future__ import annotations

import ctypes
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

_AUDIO_OUTPUT_SYNCHRONOUS: Final = 2
_INITIALIZE_PHONEME_EVENTS: Final = 0x0001
_INITIALIZE_DONT_EXIT: Final = 0x8000
_CHARS_UTF8: Final = 1
_POS_CHARACTER: Final = 1
_EVENT_LIST_TERMINATED: Final = 0
_EVENT_WORD: Final = 1
_EVENT_SENTENCE: Final = 2
_EVENT_END: Final = 5
_EVENT_MSG_TERMINATED: Final = 6
_EVENT_PHONEME: Final = 7
_PARAM_RATE: Final = 1
_PARAM_PITCH: Final = 3
BUFFER_MS: Final = 20  # asked for; eSpeak NG 1.52 hands over 60 ms buffers regardless (measured)


class EspeakError(RuntimeError):
    """The library could not be loaded, or refused a voice or parameter."""


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True, slots=True)
class Phoneme:
    """An eSpeak phoneme mnemonic starting ``offset`` samples into its chunk."""

    offset: int
    symbol: str


@dataclass(frozen=True, slots=True)
class Word:
    """A word starting ``offset`` samples into its chunk: ``text[start:start + length]``."""

    offset: int
    start: int
    length: int


@dataclass(frozen=True, slots=True)
class SpeechChunk:
    samples: npt.NDArray[np.float32]
    start_sample: int  # from the start of this synthesis
    phonemes: tuple[Phoneme, ...] = ()
    words: tuple[Word, ...] = ()


@dataclass(slots=True)
class Synthesis:
    """A whole utterance: samples and every event, offsets from the first sample."""

    samples: npt.NDArray[np.float32]
    sample_rate: int
    phonemes: list[Phoneme] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Voice:
    name: str = "en-us"
    rate_wpm: int = 175
    pitch: int = 50  # 0..100


_PHONEMES_IPA: Final = 0x02  # espeak_TextToPhonemes: UTF-8 IPA instead of eSpeak mnemonics


class Espeak:
    """The process's eSpeak NG. Use ``Espeak.instance()``."""

    _instance: Espeak | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:  # pragma: no cover - a dependency of the local extra
            raise EspeakError("eSpeak NG needs the espeakng-loader package: pip install espeakng-loader") from exc
        try:
            self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        except OSError as exc:
            raise EspeakError(f"cannot load libespeak-ng: {exc}") from exc
        self._lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]
        data = espeakng_loader.get_data_path().encode()
        rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, BUFFER_MS, data, _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise EspeakError(f"espeak_Initialize failed ({rate})")
        self.sample_rate: int = rate
        self._lock = threading.Lock()
        self._voice: Voice | None = None
        self._sink: Callable[[np.ndarray, list[tuple[int, int, _Event]]], bool] | None = None
        self._callback = _CALLBACK(self._on_audio)  # keep a reference: C holds only the pointer
        self._lib.espeak_SetSynthCallback(self._callback)

    @classmethod
    def instance(cls) -> Espeak:
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _on_audio(self, wav: ctypes._Pointer[ctypes.c_short], count: int, events: ctypes._Pointer[_Event]) -> int:
        collected: list[tuple[int, int, _Event]] = []
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            copy = _Event()
            ctypes.pointer(copy)[0] = event
            collected.append((event.type, event.sample, copy))
            i += 1
            if event.type == _EVENT_MSG_TERMINATED:
                break
        samples = np.ctypeslib.as_array(wav, shape=(count,)).astype(np.float32) / 32768.0 if count > 0 else None
        assert self._sink is not None
        keep_going = self._sink(samples if samples is not None else np.zeros(0, np.float32), collected)
        return 0 if keep_going else 1

    def _apply_voice(self, voice: Voice) -> None:
        if voice == self._voice:
            return
        if self._lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
            raise EspeakError(f"eSpeak NG has no voice {voice.name!r}")
        self._lib.espeak_SetParameter(_PARAM_RATE, max(80, min(450, voice.rate_wpm)), 0)
        self._lib.espeak_SetParameter(_PARAM_PITCH, max(0, min(100, voice.pitch)), 0)
        self._voice = voice

    def stream(self, text: str, voice: Voice, on_chunk: Callable[[SpeechChunk], bool]) -> bool:
        """Synthesize ``text``, handing each chunk to ``on_chunk`` as it is made.

        Returns True when the text was spoken to the end, False when ``on_chunk`` stopped it.
        Blocks the calling thread: run it in a worker.
        """
        with self._lock:
            self._apply_voice(voice)
            position = 0
            pending: list[tuple[int, _Event]] = []
            stopped = False

            def sink(samples: np.ndarray, events: list[tuple[int, int, _Event]]) -> bool:
                nonlocal position, stopped
                pending.extend(
                    (sample, event) for kind, sample, event in events if kind in (_EVENT_PHONEME, _EVENT_WORD)
                )
                if len(samples) == 0:
                    return not stopped
                end = position + len(samples)
                inside = [(s, e) for s, e in pending if s < end]
                pending[:] = [(s, e) for s, e in pending if s >= end]
                chunk = SpeechChunk(
                    samples,
                    position,
                    tuple(
                        Phoneme(max(0, s - position), e.id.string.decode("utf-8", "replace"))
                        for s, e in inside
                        if e.type == _EVENT_PHONEME
                    ),
                    tuple(
                        Word(max(0, s - position), e.text_position - 1, e.length)
                        for s, e in inside
                        if e.type == _EVENT_WORD
                    ),
                )
                position = end
                if not on_chunk(chunk):
                    stopped = True
                return not stopped

            self._sink = sink
            encoded = text.encode("utf-8") + b"\0"
            buffer = ctypes.create_string_buffer(encoded)
            try:
                self._lib.espeak_Synth(buffer, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            finally:
                self._sink = None
            return not stopped

    def phonemes_ipa(self, text: str, voice: Voice | None = None) -> list[str]:
        """``text`` as IPA phoneme strings, one per clause eSpeak finds (Piper's input).

        Each clause keeps the punctuation that ended it, as Piper's own phonemiser does.
        """
        with self._lock:
            self._apply_voice(voice or Voice())
            self._lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
            self._lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
            clauses: list[str] = []
            for words, ending in re.findall(r"([^.,;:!?]+)([.,;:!?]*)", text):
                if not words.strip():
                    continue
                buffer = ctypes.create_string_buffer(words.encode("utf-8") + b"\0")
                pointer = ctypes.c_void_p(ctypes.addressof(buffer))
                pieces: list[str] = []
                while pointer.value:
                    phonemes = self._lib.espeak_TextToPhonemes(ctypes.byref(pointer), _CHARS_UTF8, _PHONEMES_IPA)
                    if phonemes:
                        pieces.append(phonemes.decode("utf-8", "replace").strip())
                clauses.append(" ".join(p for p in pieces if p) + ending[:1])
            return clauses

    def synthesize(self, text: str, voice: Voice | None = None) -> Synthesis:
        """The whole utterance at once (training data, tests)."""
        chunks: list[SpeechChunk] = []

        def keep(chunk: SpeechChunk) -> bool:
            chunks.append(chunk)
            return True

        self.stream(text, voice or Voice(), keep)
        result = Synthesis(
            np.concatenate([c.samples for c in chunks]) if chunks else np.zeros(0, np.float32), self.sample_rate
        )
        for chunk in chunks:
            result.phonemes += [Phoneme(chunk.start_sample + p.offset, p.symbol) for p in chunk.phonemes]
            result.words += [Word(chunk.start_sample + w.offset, w.start, w.length) for w in chunk.words]
        return result
