"""TIMIT-style corpora for the benchmarks and the tests: where the data is, which utterances
there are, their speech bounds, fake-microphone recordings composed from them, and the
endpointing corpus (one speaker's sentences joined into turns with controlled pauses).

A TIMIT-style folder holds ``<speaker>/<utt>.wav`` (RIFF or NIST SPHERE, 16 kHz) with
``.phn`` (and, for the endpointing corpus, ``.wrd``) label files. Evaluation only: nothing
shipped is trained or tuned on TIMIT (its licence is non-commercial).
"""

from __future__ import annotations

import itertools
import os
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from presence.audio.wavfile import read_speech16k, read_wav16
from presence.media import INPUT_SAMPLE_RATE, Samples

REPO = Path(__file__).resolve().parents[2]
#: ``$PRESENCE_DATA_DIR`` or ../shared/data beside the checkout; the TIMIT sample is inside it.
DATA_DIR = Path(os.environ.get("PRESENCE_DATA_DIR", REPO / ".." / "shared" / "data"))
DEFAULT_TIMIT = DATA_DIR / "timit-sample"
RATE = INPUT_SAMPLE_RATE
TAIL_S = 2.0  # silence after the end of a turn
FADE = 80  # 5 ms raised-cosine fades where speech is cut
SILENT_PHONES = {"h#", "pau", "epi"}
CLOSURES = {"bcl", "dcl", "gcl", "pcl", "tcl", "kcl"}


def timit_utterances(timit: Path) -> list[str]:
    """Every ``<speaker>/<utt>`` with a .wav and a .phn, speakers interleaved (so the first N
    questions come from as many speakers as possible), in a fixed order."""
    by_speaker: dict[str, list[str]] = {}
    for phn in sorted(timit.glob("*/*.phn")):
        if phn.with_suffix(".wav").is_file():
            by_speaker.setdefault(phn.parent.name, []).append(f"{phn.parent.name}/{phn.stem}")
    rounds = max((len(v) for v in by_speaker.values()), default=0)
    return [utts[i] for i in range(rounds) for utts in by_speaker.values() if i < len(utts)]


def speech_bounds(phn: Path) -> tuple[int, int]:
    """First and last non-silence sample of a TIMIT utterance (its h# marks), at 16 kHz."""
    rows = [line.split() for line in phn.read_text().splitlines() if line.strip()]
    speech = [(int(a), int(b)) for a, b, p in rows if p not in ("h#", "pau", "epi")]
    return speech[0][0], speech[-1][1]


def write_wav(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.astype("<i2").tobytes())
    return path


@dataclass
class Spoken:
    start_s: float  # speech start in the composed WAV
    end_s: float  # speech end in the composed WAV


def compose(timit: Path, parts: list[tuple[str, float]], lead_s: float = 0.5) -> tuple[np.ndarray, list[Spoken]]:
    """`lead_s` of silence, then each (utterance id "speaker/utt", trailing silence s) in turn.

    Each utterance is trimmed to its speech (h# removed) so its end is exactly known.
    """
    pieces = [np.zeros(int(lead_s * RATE), dtype=np.int16)]
    marks: list[Spoken] = []
    position = len(pieces[0])
    for name, trailing_s in parts:
        audio = read_wav16(timit / f"{name}.wav")
        start, end = speech_bounds(timit / f"{name}.phn")
        speech = audio[start:end]
        marks.append(Spoken(position / RATE, (position + len(speech)) / RATE))
        pieces += [speech, np.zeros(int(trailing_s * RATE), dtype=np.int16)]
        position += len(speech) + int(trailing_s * RATE)
    return np.concatenate(pieces), marks


@dataclass(frozen=True, slots=True)
class Utterance:
    audio: Samples  # trimmed to the first and last non-silent phone
    cut_points: tuple[tuple[int, int], ...]  # (start, end) of spans that may become a mid-sentence pause
    noise_rms: float
    words: tuple[tuple[int, int, str], ...] = ()  # (start, end, word) in the trimmed audio


@dataclass(frozen=True, slots=True)
class Pause:
    start: int  # true end of speech before it (stream samples)
    end: int  # true start of speech after it
    kind: str  # "sentence" (between sentences) or "phrase" (inside one)


@dataclass(frozen=True, slots=True)
class Turn:
    speech_start: int
    speech_end: int
    pauses: tuple[Pause, ...]


@dataclass(frozen=True, slots=True)
class Stream:
    speaker: str
    audio: Samples
    turns: tuple[Turn, ...]
    words: tuple[tuple[int, int, str], ...] = ()  # (start, end, word) on the stream's timeline


# ------------------------------------------------- the endpointing corpus: turns with controlled pauses


def read_segments(path: Path) -> list[tuple[int, int, str]]:
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            a, b, label = line.split()
            rows.append((int(a), int(b), label))
    return rows


def load_utterance(wav: Path) -> Utterance:
    audio = read_speech16k(wav)
    phones = read_segments(wav.with_suffix(".phn"))
    words = read_segments(wav.with_suffix(".wrd"))
    spoken = [p for p in phones if p[2] not in SILENT_PHONES]
    first, last = spoken[0][0], spoken[-1][1]
    silent = [audio[a:b] for a, b, label in phones if label == "h#" and b - a > 400]
    noise = float(np.median([np.sqrt(np.mean(np.square(s[100:-100], dtype=np.float64))) for s in silent]))
    margin = int(0.3 * RATE)
    cuts: list[tuple[int, int]] = []
    for a, b, label in phones:
        if label == "pau" and a - first > margin and last - b > margin:
            cuts.append((a - first, b - first))
    starts = {a: label for a, _, label in phones}
    for (_, end, _), (start, _, _) in itertools.pairwise(words):
        if start == end and starts.get(start) in CLOSURES and start - first > margin and last - start > margin:
            cuts.append((start - first, start - first))
    spoken_words = tuple((a - first, b - first, w) for a, b, w in words)
    return Utterance(audio[first:last].copy(), tuple(sorted(set(cuts))), noise, spoken_words)


def load_speakers(data: Path) -> dict[str, list[Utterance]]:
    if not data.is_dir():
        raise SystemExit(f"evaluation data missing: {data} (pass --data or set up ../shared/data)")
    speakers = {}
    for folder in sorted(p for p in data.iterdir() if p.is_dir()):
        speakers[folder.name] = [load_utterance(w) for w in sorted(folder.glob("*.wav"))]
    if not speakers:
        raise SystemExit(f"no speaker folders with .wav/.phn/.wrd files in {data}")
    return speakers


def _fade(x: Samples, head: bool, tail: bool) -> Samples:
    y = x.copy()
    n = min(FADE, len(y) // 2)
    ramp = (0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n))).astype(np.float32)
    if head:
        y[:n] *= ramp
    if tail:
        y[-n:] *= ramp[::-1]
    return y


def build_stream(name: str, utterances: list[Utterance], rng: np.random.Generator, phrase_p: float = 0.5) -> Stream:
    """All of one speaker's sentences, 1–3 per turn, with controlled pauses."""
    noise_rms = float(np.median([u.noise_rms for u in utterances]))
    pieces: list[Samples] = []
    position = 0
    turns: list[Turn] = []
    stream_words: list[tuple[int, int, str]] = []

    def add_speech(x: Samples) -> tuple[int, int]:
        nonlocal position
        pieces.append(x)
        position += len(x)
        return position - len(x), position

    def add_silence(n: int) -> None:
        nonlocal position
        pieces.append((noise_rms * rng.standard_normal(n)).astype(np.float32))
        position += n

    def pause_samples() -> int:
        return int(rng.uniform(0.2, 0.9) * RATE)

    add_silence(int(0.5 * RATE))
    order = list(rng.permutation(len(utterances)))
    while order:
        count = min(len(order), int(rng.integers(1, 4)))
        sentences = [utterances[order.pop()] for _ in range(count)]
        pauses: list[Pause] = []
        turn_start: int | None = None
        end = position
        for i, utt in enumerate(sentences):
            parts = [utt.audio]
            offsets = [0]  # where each part starts in the utterance
            if utt.cut_points and rng.random() < phrase_p:
                a, b = utt.cut_points[int(rng.integers(len(utt.cut_points)))]
                parts = [_fade(utt.audio[:a], False, True), _fade(utt.audio[b:], True, False)]
                offsets = [0, b]
            for j, part in enumerate(parts):
                start, end = add_speech(part)
                lo, hi = offsets[j], offsets[j] + len(part)
                stream_words.extend(
                    (start + wa - lo, start + wb - lo, w) for wa, wb, w in utt.words if lo <= wa and wb <= hi
                )
                turn_start = start if turn_start is None else turn_start
                last_part = j == len(parts) - 1
                if last_part and i == len(sentences) - 1:
                    break
                gap = pause_samples()
                pauses.append(Pause(end, end + gap, "sentence" if last_part else "phrase"))
                add_silence(gap)
        assert turn_start is not None
        turns.append(Turn(turn_start, end, tuple(pauses)))
        add_silence(int(TAIL_S * RATE))
    return Stream(name, np.concatenate(pieces), tuple(turns), tuple(stream_words))
