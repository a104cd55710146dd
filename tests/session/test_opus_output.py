"""Opus output: each reply is its own Opus stream on a 48 kHz timeline, stamped as docs/protocol.md says."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from presence.audio.opus import OpusDecoder
from presence.client.connection import PresenceClient, client_hello
from presence.engines.scripted import synth_voice
from presence.lipsync.base import EnergyAnimator
from presence.media import OPUS_SAMPLE_RATE, AudioChunk
from presence.protocol.frames import AudioOut, Flags
from presence.protocol.hello import OPUS
from presence.session.outbound import ReplyStream
from tests.conftest import ServerFactory, silence, speech_like

START = 96_000  # the reply's place on the output timeline


def reply_frames(codec: str, voice: np.ndarray) -> list[AudioOut]:
    stream = ReplyStream(1, START, OPUS_SAMPLE_RATE, EnergyAnimator(OPUS_SAMPLE_RATE, 60), "oculus15", codec=codec)
    frames = []
    for offset in range(0, len(voice), 1_440):  # 60 ms engine chunks at 24 kHz
        frames += stream.push(AudioChunk(1, voice[offset : offset + 1_440], 24_000))
    frames += stream.finish()
    return [f for f in frames if isinstance(f, AudioOut)]


def on_timeline(frames: list[AudioOut], decode: bool) -> np.ndarray:
    """Place every frame's samples at its timestamp; a fresh decoder per reply (segment)."""
    out = np.zeros(START + 2 * OPUS_SAMPLE_RATE, dtype=np.float32)
    decoder = OpusDecoder()
    for frame in frames:
        pcm = np.frombuffer(frame.data, "<i2").astype(np.float32) / 32768 if not decode else None
        samples = decoder.decode(frame.data) if pcm is None else pcm
        out[frame.timestamp : frame.timestamp + len(samples)] = samples
    return out


def test_an_opus_reply_decodes_onto_the_same_timeline_positions_as_pcm() -> None:
    voice = synth_voice(800)  # 24 kHz
    pcm = reply_frames("pcm_s16le", voice)
    opus = reply_frames(OPUS, voice)
    assert opus[0].flags & Flags.SEGMENT_START and opus[-1].flags & Flags.SEGMENT_END
    assert opus[0].timestamp == START
    assert [f.timestamp for f in opus[1:3]] == [START + 960 - 312, START + 2 * 960 - 312]
    reference, decoded = on_timeline(pcm, decode=False), on_timeline(opus, decode=True)
    span = slice(START, START + 800 * 48)
    corr = np.correlate(decoded[span][:9_600], reference[span][:9_600], "full")
    lag = int(np.argmax(corr)) - (9_600 - 1)
    # SILK's internal resampling shifts phase by a few samples; a frame would be 960.
    assert abs(lag) <= 12, f"the Opus and PCM renditions line up (lag {lag} samples at 48 kHz)"
    loudness = [np.sqrt(np.mean(x[span].reshape(-1, 480) ** 2, axis=1)) for x in (decoded, reference)]
    assert np.corrcoef(*loudness)[0, 1] > 0.95, "the same sound, 10 ms by 10 ms"


def test_opus_output_needs_the_48_khz_timeline() -> None:
    with pytest.raises(ValueError, match="48000"):
        ReplyStream(1, 0, 24_000, EnergyAnimator(24_000, 60), "oculus15", codec=OPUS)


async def test_a_client_that_asks_for_opus_output_gets_a_decodable_reply_with_animation(
    server_factory: ServerFactory,
) -> None:
    hello = client_hello()
    hello["audio_out"] = [{"codec": OPUS, "sample_rate": OPUS_SAMPLE_RATE, "channels": 1}] + hello["audio_out"]
    async with server_factory(confirm_ms=320, scripted_reply_ms=600) as srv:
        client = PresenceClient(srv.url, hello=hello)
        agreement = await client.connect()
        assert (agreement.audio_out.codec, agreement.audio_out.sample_rate) == (OPUS, OPUS_SAMPLE_RATE)
        audio = np.concatenate([speech_like(0.5), silence(0.8)])
        for offset in range(0, len(audio), 320):
            await client.send_audio(audio[offset : offset + 320])
            await asyncio.sleep(0.02)
        record = await client.wait_for_event(lambda b: b.get("type") == "metrics", 5)
        await client.close()
    frames = [frame for _, frame in client.received.audio]
    decoder = OpusDecoder()
    decoded = sum(len(decoder.decode(f.data)) for f in frames)
    assert decoded >= 0.6 * OPUS_SAMPLE_RATE, "the whole 600 ms reply, at 48 kHz"
    start, end = record["reply_start_sample"], record["reply_end_sample"]
    assert frames[0].timestamp == start and end - start >= 0.6 * OPUS_SAMPLE_RATE
    animation = [frame.timestamp for _, frame in client.received.animation]
    assert animation and start <= min(animation) and max(animation) < end, "lips on the same 48 kHz timeline"
