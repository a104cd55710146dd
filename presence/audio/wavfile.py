"""The one reader for audio files: RIFF WAV (8/16/24/32-bit PCM) and NIST SPHERE (16-bit, as
TIMIT ships it, also named .wav). ``presence talk``, the benchmarks and the tests all use it.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from presence.media import INPUT_SAMPLE_RATE, Samples


class WavError(ValueError):
    """The file is not audio this reader understands; the message names the file and why."""


def read_audio(path: Path) -> tuple[Samples, int]:
    """Mono float32 in [-1, 1) and its sample rate (channels are averaged)."""
    raw = path.read_bytes()
    if raw.startswith(b"NIST_1A"):
        return _sphere(path, raw)
    try:
        with wave.open(str(path), "rb") as wav:
            rate, width, channels = wav.getframerate(), wav.getsampwidth(), wav.getnchannels()
            data = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise WavError(f"{path}: not a PCM WAV file ({exc})") from None
    if width == 1:
        samples = (np.frombuffer(data, dtype=np.uint8).astype(np.float32) - 128) / 128
    elif width == 2:
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768
    elif width == 3:
        raw3 = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3)
        ints = (raw3[:, 0].astype(np.int32) | raw3[:, 1].astype(np.int32) << 8 | raw3[:, 2].astype(np.int32) << 16) << 8
        samples = ints.astype(np.float32) / 2**31
    elif width == 4:
        samples = np.frombuffer(data, dtype="<i4").astype(np.float32) / 2**31
    else:
        raise WavError(f"{path}: {width * 8}-bit samples are not supported")
    return _mono(samples, channels), rate


def read_wav16(path: Path) -> npt.NDArray[np.int16]:
    """16 kHz 16-bit samples, exactly as stored (TIMIT, fake-microphone WAVs); any other rate
    or width is an error, since callers count samples on the 16 kHz input timeline."""
    samples, rate = read_audio(path)
    if rate != INPUT_SAMPLE_RATE:
        raise WavError(f"{path}: expected {INPUT_SAMPLE_RATE} Hz audio, not {rate} Hz")
    return np.round(samples * 32768).clip(-32768, 32767).astype(np.int16)


def read_speech16k(path: Path) -> Samples:
    """16 kHz mono float32 (a 16 kHz file's samples over 32768)."""
    return (read_wav16(path).astype(np.float32) / 32768.0).astype(np.float32)


def _sphere(path: Path, raw: bytes) -> tuple[Samples, int]:
    header_bytes = int(raw[8:16])
    text = raw[16:header_bytes].decode("ascii", "replace").splitlines()
    fields = dict(line.split(" ", 1) for line in text if " " in line)
    # Absent fields take SPHERE's defaults for TIMIT: 16-bit, 16 kHz, one channel, little-endian.
    if fields.get("sample_n_bytes", "-i 2") != "-i 2":
        raise WavError(f"{path}: only 16-bit SPHERE is supported")
    order = "<i2" if fields.get("sample_byte_format", "-s2 01").endswith("01") else ">i2"
    rate = int(fields.get("sample_rate", "-i 16000").split()[-1])
    channels = int(fields.get("channel_count", "-i 1").split()[-1])
    data = np.frombuffer(raw[header_bytes:], dtype=order)
    data = data[: len(data) - len(data) % channels]
    return _mono(data.astype(np.float32) / 32768, channels), rate


def _mono(samples: npt.NDArray[np.floating[Any]], channels: int) -> Samples:
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return samples.astype(np.float32)
