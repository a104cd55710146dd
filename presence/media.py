"""The media types every layer shares: user audio in, reply audio out, phoneme marks, and the
arithmetic of the two timelines (ms ↔ samples, Opus packet stamps).

They live here, below ``audio/``, ``lipsync/``, ``engines/`` and ``session/``, so that none of
those imports another just to name a chunk of samples (``audio`` ↔ ``engines`` was a cycle).
Pure data and pure functions: no I/O, no codecs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt

#: The session's input timeline and every engine's input: 16 kHz mono.
INPUT_SAMPLE_RATE: Final = 16_000

Samples: TypeAlias = npt.NDArray[np.float32]

#: Opus on the wire (docs/protocol.md, "Audio"): 20 ms packets at 48 kHz, and a decoder drops
#: the encoder's look-ahead (the pre-skip) once at the start of each stream.
OPUS_SAMPLE_RATE: Final = 48_000
OPUS_FRAME_SAMPLES: Final = 960
OPUS_PRE_SKIP_SAMPLES: Final = 312  # libopus at 48 kHz (2.5 ms + 4 ms); also Chromium's


def ms_to_samples(ms: float, sample_rate: int = INPUT_SAMPLE_RATE) -> int:
    """Milliseconds as a whole number of samples at ``sample_rate`` (rounded)."""
    return round(ms * sample_rate / 1000)


def samples_to_ms(samples: int | float, sample_rate: int = INPUT_SAMPLE_RATE) -> float:
    return samples * 1000 / sample_rate


def opus_packet_timestamp(stream_start: int, n: int) -> int:
    """The stamp of packet ``n`` of an Opus stream whose first input sample is ``stream_start``.

    Timestamps name the PCM left after pre-skip removal: packet 0 decodes from the stream's
    first sample, packet n ≥ 1 from ``start + 960·n − 312`` (presence/web/opus-timing.js is
    the browser's copy of this rule).
    """
    if n < 0:
        raise ValueError(f"packet index {n} is negative")
    return stream_start if n == 0 else stream_start + OPUS_FRAME_SAMPLES * n - OPUS_PRE_SKIP_SAMPLES


@dataclass(frozen=True, slots=True)
class InputAudio:
    """User audio, 16 kHz mono float32 in [-1, 1]; ``input_sample`` stamps its first sample."""

    samples: Samples
    input_sample: int


@dataclass(frozen=True, slots=True)
class PhonemeMark:
    """A phoneme starting ``offset_samples`` after the first sample of the chunk that carries it.

    ``alphabet`` names the symbol set: ``"espeak"`` (eSpeak NG mnemonics) or ``"arpabet"``.
    ``duration_samples`` is 0 when unknown (the next mark ends it).
    """

    offset_samples: int
    phoneme: str
    alphabet: str = "espeak"
    duration_samples: int = 0


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Reply audio, mono float32 at ``sample_rate``; chunks of a reply are contiguous."""

    turn_id: int
    samples: Samples
    sample_rate: int
    phonemes: tuple[PhonemeMark, ...] = ()
    text: str = ""  # the words this chunk speaks, when known (for "what was heard")
