"""Server-side Opus (presence.audio.opus): the pre-skip convention the browser relies on."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from presence.audio.opus import OpusDecoder, OpusEncoder, OpusError
from presence.audio.vad import EnergyVad
from presence.media import OPUS_FRAME_SAMPLES as FRAME_SAMPLES
from presence.media import OPUS_PRE_SKIP_SAMPLES as PRE_SKIP_SAMPLES
from presence.media import opus_packet_timestamp
from presence.protocol.hello import AudioFormat
from presence.session.inbound import Inbound
from tests.conftest import REPO


def coloured_noise(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    y = np.zeros(n)
    for i in range(1, n):  # a gentle low-pass, so it survives a speech codec
        y[i] = 0.9 * y[i - 1] + x[i]
    return (0.05 * y).astype(np.float32)


def best_lag(decoded: np.ndarray, original: np.ndarray) -> int:
    n = min(len(decoded), len(original), 24_000)
    corr = np.correlate(decoded[:n], original[:n], "full")
    return int(np.argmax(corr)) - (n - 1)


def test_a_round_trip_is_aligned_to_the_first_input_sample() -> None:
    original = coloured_noise(48_000)
    encoder, decoder = OpusEncoder(bitrate=64_000), OpusDecoder()
    packets = encoder.encode(original) + encoder.flush()
    decoded = np.concatenate([decoder.decode(p) for p in packets])
    assert best_lag(decoded, original) == 0
    assert len(decoded) >= len(original), "flush lets the last real samples out"
    error = decoded[: len(original)] - original
    assert np.sqrt(np.mean(error**2)) < 0.5 * np.sqrt(np.mean(original**2))


def test_the_first_packet_loses_the_pre_skip_and_later_ones_decode_whole() -> None:
    encoder, decoder = OpusEncoder(), OpusDecoder()
    packets = encoder.encode(coloured_noise(FRAME_SAMPLES * 4))
    sizes = [len(decoder.decode(p)) for p in packets]
    assert sizes == [FRAME_SAMPLES - PRE_SKIP_SAMPLES] + [FRAME_SAMPLES] * (len(packets) - 1)


def test_skipped_packets_of_suppressed_silence_do_not_break_decoding() -> None:
    encoder, decoder = OpusEncoder(), OpusDecoder()
    packets = encoder.encode(coloured_noise(FRAME_SAMPLES * 20))
    kept = packets[:5] + packets[12:]
    sizes = [len(decoder.decode(p)) for p in kept]
    assert sizes[1:] == [FRAME_SAMPLES] * (len(kept) - 1)


def test_browser_stamps_give_the_session_a_gapless_input_timeline() -> None:
    """Packet n ≥ 1 stamped E + 960·n − 312 (capture.js) meets the decoder with no gap or overlap."""
    encoder = OpusEncoder()
    packets = encoder.encode(coloured_noise(FRAME_SAMPLES * 10))
    inbound = Inbound(AudioFormat("opus", 48_000), EnergyVad())
    start = 48_000 * 3
    for n, packet in enumerate(packets):
        stamp = opus_packet_timestamp(start, n)
        inbound.push(packet, stamp, now_s=n * FRAME_SAMPLES / 48_000)  # arriving in real time
    assert inbound.stats.gap_samples_filled == 0
    assert inbound.stats.dropped_late_samples == 0


def test_an_empty_or_corrupt_packet_is_an_opus_error() -> None:
    decoder = OpusDecoder()
    with pytest.raises(OpusError):
        decoder.decode(b"")
    with pytest.raises(OpusError):
        decoder.decode(b"\xff" * 5)


def test_only_the_wire_rate_is_accepted() -> None:
    with pytest.raises(ValueError):
        OpusDecoder(16_000)
    with pytest.raises(ValueError):
        OpusEncoder(24_000)


def test_the_browser_and_the_server_stamp_opus_packets_by_one_rule() -> None:
    """presence/web/opus-timing.js is the browser's copy of presence.media's rule: they agree."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: install it with `apt-get install nodejs` to test the web client")
    cases = [(0, 0), (0, 1), (48_000, 0), (48_000, 1), (48_000, 7), (123_456, 250)]
    script = (
        'import { opusPacketTimestamp } from "./presence/web/opus-timing.js";'
        f"console.log(JSON.stringify({json.dumps(cases)}.map(([e, n]) => opusPacketTimestamp(e, n))));"
    )
    result = subprocess.run(
        [node, "--input-type=module", "-e", script], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [opus_packet_timestamp(e, n) for e, n in cases]
    assert opus_packet_timestamp(48_000, 1) == 48_000 + 960 - 312, "docs/protocol.md: E + 960·n − 312"
