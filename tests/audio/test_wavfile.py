"""The one audio-file reader: every PCM width, channels averaged, and TIMIT's SPHERE files."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from presence.audio.wavfile import WavError, read_audio, read_wav16

RAMP = np.array([0, 1000, -1000, 32767, -32768, 12345], dtype=np.int16)


def _riff(path: Path, frames: bytes, width: int, channels: int = 1, rate: int = 16_000) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(frames)
    return path


def _sphere(path: Path, samples: np.ndarray, byte_format: str) -> Path:
    fields = f"sample_rate -i 16000\nsample_byte_format -s2 {byte_format}\nend_head\n"
    header = f"NIST_1A\n   1024\n{fields}".encode().ljust(1024, b" ")
    order = "<i2" if byte_format == "01" else ">i2"
    path.write_bytes(header + samples.astype(order).tobytes())
    return path


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_every_pcm_width_reads_to_the_same_float_signal(tmp_path: Path, width: int) -> None:
    ints = RAMP.astype(np.int64) << (8 * width - 16) if width >= 2 else (RAMP.astype(np.int64) >> 8) + 128
    dtype = {1: "u1", 2: "<i2", 4: "<i4"}.get(width)
    if dtype is not None:
        frames = ints.astype(dtype).tobytes()
    else:  # 24-bit little-endian
        frames = b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints)
    samples, rate = read_audio(_riff(tmp_path / "x.wav", frames, width))
    assert rate == 16_000 and samples.dtype == np.float32
    tolerance = 1 / 128 if width == 1 else 1e-6
    np.testing.assert_allclose(samples, RAMP / 32768, atol=tolerance)


def test_channels_are_averaged(tmp_path: Path) -> None:
    stereo = np.stack([RAMP // 2, RAMP // 2]).T.astype("<i2")
    samples, _ = read_audio(_riff(tmp_path / "s.wav", stereo.tobytes(), 2, channels=2))
    np.testing.assert_allclose(samples, (RAMP // 2) / 32768)


@pytest.mark.parametrize("byte_format", ["01", "10"])
def test_sphere_files_read_exactly_in_either_byte_order(tmp_path: Path, byte_format: str) -> None:
    assert read_wav16(_sphere(tmp_path / "t.wav", RAMP, byte_format)).tolist() == RAMP.tolist()


def test_the_16k_reader_refuses_other_rates_and_non_audio(tmp_path: Path) -> None:
    with pytest.raises(WavError, match="16000 Hz"):
        read_wav16(_riff(tmp_path / "44k.wav", RAMP.tobytes(), 2, rate=44_100))
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(WavError, match="not a PCM WAV"):
        read_audio(tmp_path / "text.wav")
