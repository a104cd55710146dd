"""``presence bench overhead``: what presence itself adds, with the scripted engine.

Three measurements, each p50/p95/p99:
1. codec: encode + decode of one frame, per frame type;
2. server work per frame, in process: one 20 ms input frame through ``Session.handle``
   (decode, resample, VAD, turn-taking) and one 20 ms reply chunk through ``ReplyStream``
   (resample, frame, animate, quantise);
3. loopback, end to end: a real ``presence serve`` process and the Python client; per turn,
   the client's time from sending the input frame that confirmed the turn to receiving the
   first reply audio (and animation) frame, with a scripted engine whose reply is ready
   before confirmation, so every millisecond of it is presence plus loopback; and the
   server's own view (first frame sent − reply releasable).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np

from presence.audio.pcm import float_to_s16le
from presence.audio.signals import silence, speech_like
from presence.audio.vad import EnergyVad, VoiceActivityDetector
from presence.bench._stats import summary, table, write_results
from presence.client.connection import PresenceClient
from presence.engines.base import SessionOptions
from presence.engines.scripted import Script, ScriptedEngine, synth_voice
from presence.lipsync.base import EnergyAnimator
from presence.media import AudioChunk
from presence.protocol.frames import Animation, AudioIn, AudioOut, Event, Frame, decode, encode
from presence.protocol.hello import AudioFormat, ServerCapabilities, negotiate, parse_client_hello
from presence.session.outbound import ReplyStream
from presence.session.session import Session
from presence.testing.servers import presence_server

FRAME_SAMPLES = 320  # 20 ms at 16 kHz


def bench_codec(n: int) -> list[dict[str, Any]]:
    examples: dict[str, Frame] = {
        "audio in (20 ms PCM 16 kHz)": AudioIn(b"\x01\x00" * 320, seq=5, timestamp=16000),
        "audio out (20 ms PCM 24 kHz)": AudioOut(b"\x01\x00" * 480, seq=5, timestamp=24000),
        "animation (2 frames × 15)": Animation(0, 15, 400, bytes(range(30)), timestamp=24000),
        "event (turn state)": Event({"type": "turn", "state": "responding", "turn_id": 3}),
    }
    rows = []
    for name, frame in examples.items():
        samples = []
        for _ in range(n):
            start = time.perf_counter_ns()
            decode(encode(frame))
            samples.append((time.perf_counter_ns() - start) / 1000)
        rows.append({"what": name, **summary(samples, 2)})
    return rows


class _Sink:
    def __init__(self) -> None:
        self.frames = 0

    def __call__(self, frame: Frame) -> None:
        self.frames += 1


async def bench_session_frames(seconds: float, vad_name: str) -> dict[str, Any]:
    caps = ServerCapabilities(audio_in=(AudioFormat("pcm_s16le", 16000),), audio_out=(AudioFormat("pcm_s16le", 24000),))
    hello = {
        "protocol": 1,
        "audio_in": [{"codec": "pcm_s16le", "sample_rate": 16000}],
        "audio_out": [{"codec": "pcm_s16le", "sample_rate": 24000}],
    }
    agreement = negotiate(parse_client_hello(hello), caps, "bench", "scripted")
    engine = await ScriptedEngine(Script(reply_ms=400)).open_session(SessionOptions("bench"))
    vad: VoiceActivityDetector = EnergyVad()
    if vad_name == "silero":
        from presence.config import Settings
        from presence.server.app import make_vad

        vad = make_vad(Settings(vad="silero"))
    # Frames go through as fast as the CPU allows, but the session must see them arrive in
    # real time (it bounds client timestamps by its clock): give it the stream's own clock.
    stream_time_s = [0.0]
    session = Session(
        agreement, engine, _Sink(), vad, lambda: EnergyAnimator(24000, 60), clock=lambda: stream_time_s[0]
    )
    audio = np.concatenate(
        [np.concatenate([speech_like(0.6, seed=i), silence(0.9)]) for i in range(int(seconds / 1.5) + 1)]
    )
    per_frame = []
    for i, offset in enumerate(range(0, int(seconds * 16000), FRAME_SAMPLES)):
        frame = AudioIn(float_to_s16le(audio[offset : offset + FRAME_SAMPLES]), seq=i, timestamp=offset)
        stream_time_s[0] = offset / 16000
        start = time.perf_counter_ns()
        await session.handle(frame)
        per_frame.append((time.perf_counter_ns() - start) / 1000)
    await session.close()
    return {"what": f"input frame → session ({vad_name} VAD)", **summary(per_frame, 1)}


def bench_reply_frames(chunks: int, source_rate: int) -> dict[str, Any]:
    stream = ReplyStream(1, 0, 24000, EnergyAnimator(24000, 60), "oculus15")
    voice = synth_voice(chunks * 20, sample_rate=source_rate)
    step = source_rate // 50
    per_chunk = []
    for offset in range(0, len(voice), step):
        chunk = AudioChunk(1, voice[offset : offset + step], source_rate)
        start = time.perf_counter_ns()
        stream.push(chunk)
        per_chunk.append((time.perf_counter_ns() - start) / 1000)
    return {"what": f"20 ms reply chunk ({source_rate} Hz) → frames", **summary(per_chunk, 1)}


async def _stream(client: PresenceClient, audio: np.ndarray, until: Any = None, limit_s: float = 10) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    i = 0
    while True:
        offset = i * FRAME_SAMPLES
        if offset < len(audio):
            chunk = audio[offset : offset + FRAME_SAMPLES]
        elif until is not None and not until() and loop.time() - start < limit_s:
            chunk = np.zeros(FRAME_SAMPLES, dtype=np.float32)
        else:
            return
        delay = start + i * 0.02 - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await client.send_audio(chunk)
        i += 1


async def bench_loopback(turns: int, port: int) -> dict[str, Any]:
    client = PresenceClient(f"ws://127.0.0.1:{port}/v1/session")
    await client.connect()
    for turn in range(1, turns + 1):

        def done(turn: int = turn) -> bool:
            return any(b.get("turn_id") == turn for b in client.received.events_of("metrics"))

        await _stream(client, np.concatenate([speech_like(0.6, seed=turn), silence(0.3)]), until=done)
        await _stream(client, silence(0.2))
    await client.close()
    audio_ms, animation_ms, server_ms, speech_end_ms = [], [], [], []
    for body in client.received.events_of("metrics"):
        confirmed = body.get("turn_confirmed_sample")
        start = body.get("reply_start_sample")
        # The confirming VAD window ends before `confirmed`: its last sample is confirmed - 1.
        sent = client.sent_time_of(confirmed - 1) if confirmed is not None else None
        end_sent = client.sent_time_of(body["speech_end_sample"]) if body.get("speech_end_sample") else None
        first_audio = next((at for at, f in client.received.audio if f.timestamp == start), None)
        first_anim = next((at for at, f in client.received.animation if f.timestamp >= (start or 0)), None)
        if sent is None or first_audio is None:
            continue
        audio_ms.append((first_audio - sent) * 1000)
        if end_sent is not None:
            speech_end_ms.append((first_audio - end_sent) * 1000)
        if first_anim is not None:
            animation_ms.append((first_anim - sent) * 1000)
        release = max(body["turn_confirmed_ms"], body["engine_first_audio_ms"])
        server_ms.append(body["first_audio_sent_ms"] - release)
    return {
        "client_confirm_to_first_audio_ms": summary(audio_ms),
        "client_confirm_to_first_animation_ms": summary(animation_ms),
        "server_release_to_first_audio_sent_ms": summary(server_ms),
        "client_speech_end_to_first_audio_ms": summary(speech_end_ms),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="presence bench overhead", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="CI-sized run")
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--json", help="write results as JSON here")
    parser.add_argument("--md", default="docs/benchmarks/overhead.md", help="Markdown report path ('' for none)")
    # The loopback run streams a synthetic voice, which Silero does not always take for speech;
    # the energy detector makes every turn count. Both detectors' per-frame cost is reported.
    parser.add_argument("--vad", default="energy", choices=["energy", "silero"], help="VAD used by the server")
    args = parser.parse_args(argv)
    turns = 3 if args.quick else args.turns
    codec = bench_codec(2000 if args.quick else 50_000)
    frames = [
        asyncio.run(bench_session_frames(3 if args.quick else 30, "energy")),
        asyncio.run(bench_session_frames(3 if args.quick else 30, "silero")),
        bench_reply_frames(50 if args.quick else 1000, 24000),
        bench_reply_frames(50 if args.quick else 1000, 22050),
    ]
    confirm_ms = 320
    with presence_server(
        "--engine", "scripted", "--vad", args.vad, "--confirm-ms", str(confirm_ms), "--scripted-reply-ms", "400"
    ) as port:
        loopback = asyncio.run(bench_loopback(turns, port))
    rows = [{"what": k, **v} for k, v in loopback.items()]
    columns = [("what", "measure"), ("n", "n"), ("p50", "p50"), ("p95", "p95"), ("p99", "p99")]
    markdown = "\n\n".join(
        [
            "# Orchestration overhead (scripted engine)",
            f"Command: `presence bench overhead{' --quick' if args.quick else ''} --turns {turns}`; "
            f"VAD `{args.vad}`, fixed confirmation after {confirm_ms} ms of silence.",
            "## Codec: encode + decode of one frame (µs)",
            table(codec, columns),
            "## Server work per frame, in process (µs)",
            table(frames, columns),
            "## Loopback end to end, per turn (ms)",
            "The scripted reply is ready before the turn is confirmed, so *confirm → first audio* is "
            "everything presence and the loopback add. *Speech end → first audio* adds the "
            f"confirmation rule ({confirm_ms} ms of silence, counted in 32 ms VAD windows).",
            table(rows, columns),
        ]
    )
    results = {"suite": "overhead", "turns": turns, "codec_us": codec, "frames_us": frames, "loopback": loopback}
    write_results(results, markdown, args.json, Path(args.md) if args.md and not args.quick else None)
    return 0
