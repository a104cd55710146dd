"""Debian's Chromium with a fake microphone, and TIMIT questions whose speech end is known.

Shared by the browser tests and ``presence bench g2g``. Never downloads a browser: it drives
/usr/bin/chromium through Playwright's Python package.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CHROMIUM = Path("/usr/bin/chromium")
RATE = 16_000


class BrowserMissing(RuntimeError):
    """Chromium is not installed; the message says how to install it."""


def require_chromium() -> None:
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        raise BrowserMissing(
            "Chromium is missing: install it with `apt-get install chromium chromium-driver` (Makefile: browser-deps)"
        )


def read_wav16(path: Path) -> np.ndarray:
    """16 kHz mono int16 from a RIFF WAV, or from TIMIT's original NIST SPHERE files (also
    named .wav; the sample holds both kinds)."""
    raw = path.read_bytes()
    if raw.startswith(b"NIST_1A"):
        header_bytes = int(raw[8:16])
        fields = dict(line.split(" ", 1) for line in raw[16:header_bytes].decode("ascii").splitlines() if " " in line)
        # Absent fields take SPHERE's defaults for TIMIT: 16-bit, one channel.
        if fields.get("sample_rate") != "-i 16000" or fields.get("sample_n_bytes", "-i 2") != "-i 2":
            raise ValueError(f"{path}: expected 16 kHz s16 SPHERE")
        order = "<i2" if fields.get("sample_byte_format", "-s2 01").endswith("01") else ">i2"
        return np.frombuffer(raw[header_bytes:], dtype=order).astype(np.int16)
    with wave.open(str(path)) as w:
        if w.getframerate() != RATE or w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"{path}: expected 16 kHz 16-bit mono")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").copy()


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
class Utterance:
    start_s: float  # speech start in the composed WAV
    end_s: float  # speech end in the composed WAV


def compose(timit: Path, parts: list[tuple[str, float]], lead_s: float = 0.5) -> tuple[np.ndarray, list[Utterance]]:
    """`lead_s` of silence, then each (utterance id "speaker/utt", trailing silence s) in turn.

    Each utterance is trimmed to its speech (h# removed) so its end is exactly known.
    """
    pieces = [np.zeros(int(lead_s * RATE), dtype=np.int16)]
    marks: list[Utterance] = []
    position = len(pieces[0])
    for name, trailing_s in parts:
        audio = read_wav16(timit / f"{name}.wav")
        start, end = speech_bounds(timit / f"{name}.phn")
        speech = audio[start:end]
        marks.append(Utterance(position / RATE, (position + len(speech)) / RATE))
        pieces += [speech, np.zeros(int(trailing_s * RATE), dtype=np.int16)]
        position += len(speech) + int(trailing_s * RATE)
    return np.concatenate(pieces), marks


@contextlib.contextmanager
def chromium(wav: Path, grant_microphone: bool = True, extra_args: tuple[str, ...] = ()) -> Iterator[Any]:
    """A fresh headless Chromium whose fake microphone plays `wav` once; yields the context."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="presence-chromium-")
    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream" if grant_microphone else "--deny-permission-prompts",
        f"--use-file-for-fake-audio-capture={wav}%noloop",
        *extra_args,
    ]
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                profile,
                executable_path=str(CHROMIUM),
                headless=True,
                args=args,
                ignore_default_args=["--mute-audio"],
                env={**os.environ, "NO_PROXY": "127.0.0.1,localhost"},
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
