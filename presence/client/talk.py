"""``presence talk FILE.wav``: speak a WAV file to a server in real time, save what comes back.

Writes DIR/reply.wav (reply audio as heard, on the output timeline), DIR/animation.jsonl
(one animation frame a line) and DIR/turns.json (per turn: transcripts, the server's
timestamps and the latencies this client measured), and prints a line per turn.

A session the server ends with a reconnectable close (a draining server's 1001 with the
reconnect hint, a drop, overload) is reopened (reconnect.py) and the rest of the file is
spoken to the new session; the outputs then hold every session's turns, one after another.
"""

from __future__ import annotations

import asyncio
import json
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import websockets

from presence.audio.pcm import float_to_s16le, resample
from presence.audio.wavfile import read_audio
from presence.client.connection import INPUT_RATE, PresenceClient, animation_rows, render_timeline
from presence.client.reconnect import connect_with_retry, should_reconnect

FRAME_MS = 20


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(float_to_s16le(samples))


@dataclass(frozen=True, slots=True)
class TalkResult:
    turns: list[dict[str, Any]]
    out_dir: Path | None
    close_code: int | None
    sessions: int = 1  # more than one: the server closed a session and talk reconnected


async def stream_file(
    client: PresenceClient, samples16k: np.ndarray, tail_silence_s: float = 1.0, settle_s: float = 20.0
) -> int:
    """Send the audio in real time, then silence until the conversation settles or time runs out.

    Returns how many samples of ``samples16k`` were sent: fewer than all when the server
    closed the session first."""
    frame = INPUT_RATE * FRAME_MS // 1000
    padded = np.concatenate([samples16k, np.zeros(int(tail_silence_s * INPUT_RATE), dtype=np.float32)])
    loop = asyncio.get_running_loop()
    start = loop.time()
    n = 0
    sent = 0
    try:
        for n, offset in enumerate(range(0, len(padded), frame)):
            await _sleep_until(loop, start + n * FRAME_MS / 1000)
            await client.send_audio(padded[offset : offset + frame])
            sent = min(len(samples16k), offset + frame)
        # Keep the line alive with silence until every started turn has finished.
        deadline = loop.time() + settle_s
        silence = np.zeros(frame, dtype=np.float32)
        while loop.time() < deadline and not _settled(client):
            n += 1
            await _sleep_until(loop, start + n * FRAME_MS / 1000)
            await client.send_audio(silence)
    except websockets.ConnectionClosed:
        await client.wait_closed()
    return sent


def _settled(client: PresenceClient) -> bool:
    states = client.received.events_of("turn")
    started = {body["turn_id"] for body in states if body["state"] == "user_speaking"}
    finished = {body["turn_id"] for body in client.received.events_of("metrics")}
    return bool(started) and started <= finished and states[-1]["state"] == "listening"


async def _sleep_until(loop: asyncio.AbstractEventLoop, when: float) -> None:
    delay = when - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)


def turn_summaries(client: PresenceClient) -> list[dict[str, Any]]:
    """Server metrics per turn plus what this client measured on its own clock."""
    first_audio_at: dict[int, float] = {}
    for at, frame in client.received.audio:
        for body in client.received.events_of("metrics"):
            start = body.get("reply_start_sample")
            if start is not None and frame.timestamp == start and body["turn_id"] not in first_audio_at:
                first_audio_at[body["turn_id"]] = at
    summaries = []
    for body in client.received.events_of("metrics"):
        turn = dict(body)
        turn["session_id"] = client.agreement.session_id if client.agreement is not None else None
        end_sample = body.get("speech_end_sample")
        sent = client.sent_time_of(end_sample) if end_sample is not None else None
        got = first_audio_at.get(body["turn_id"])
        turn["client_speech_end_to_first_audio_ms"] = (
            round((got - sent) * 1000, 3) if got is not None and sent is not None else None
        )
        summaries.append(turn)
    return summaries


async def talk(
    url: str, wav_path: Path, out_dir: Path | None, settle_s: float = 20.0, token: str | None = None
) -> TalkResult:
    samples, rate = read_audio(wav_path)
    samples16k = resample(samples, rate, INPUT_RATE)
    clients = [await connect_with_retry(lambda: PresenceClient(url, token=token))]
    started = time.monotonic()
    offset = 0
    while True:
        client = clients[-1]
        try:
            offset += await stream_file(client, samples16k[offset:], settle_s=settle_s)
        finally:
            await client.close()
        if offset >= len(samples16k) or not should_reconnect(client.close_code):
            break
        # The server ended the session before the file did (a draining server, a drop): the
        # rest of the file goes to a new session, wherever the server or its proxy puts it.
        reopened = connect_with_retry(lambda: PresenceClient(url, token=token), client.close_code, client.close_reason)
        clients.append(await reopened)
    turns = [turn for c in clients for turn in turn_summaries(c)]  # each tagged with its session_id
    if out_dir is not None:
        save_outputs(clients, out_dir, turns, round(time.monotonic() - started, 3))
    return TalkResult(turns, out_dir, clients[-1].close_code, len(clients))


def save_outputs(clients: list[PresenceClient], out_dir: Path, turns: list[dict[str, Any]], duration_s: float) -> None:
    """reply.wav, animation.jsonl and turns.json, as documented in the module docstring; with
    several sessions, reply.wav holds each session's reply audio in turn and the animation rows
    carry their session's index (``session``) and timeline."""
    first = clients[0].agreement
    assert first is not None
    rate = first.audio_out.sample_rate
    out_dir.mkdir(parents=True, exist_ok=True)
    audio = np.concatenate([render_timeline(c.received, rate)[0] for c in clients])
    write_wav(out_dir / "reply.wav", audio, rate)
    with (out_dir / "animation.jsonl").open("w") as fh:
        for index, client in enumerate(clients):
            for row in animation_rows(client.received):
                row["t"] = round(row["t_samples"] / rate, 5)
                if len(clients) > 1:
                    row["session"] = index
                fh.write(json.dumps(row) + "\n")
    transcripts = [body for c in clients for body in c.received.events_of("transcript") if body.get("final")]
    summary = {
        "session_id": first.session_id,
        "session_ids": [c.agreement.session_id for c in clients if c.agreement is not None],
        "engine": first.engine,
        "turns": turns,
        "transcripts": transcripts,
        "duration_s": duration_s,
    }
    (out_dir / "turns.json").write_text(json.dumps(summary, indent=2))


def _ms(turn: dict[str, Any], key: str) -> str:
    value = turn.get(key)
    return "—" if value is None else f"{value:.0f} ms"


def print_turns(result: TalkResult) -> None:
    for turn in result.turns:
        print(
            f"turn {turn['turn_id']}: confirmed {_ms(turn, 'turn_confirmed_ms')}, "
            f"engine audio {_ms(turn, 'engine_first_audio_ms')}, "
            f"first audio sent {_ms(turn, 'first_audio_sent_ms')} after the last speech arrived; "
            f"speech end → first audio at this client {_ms(turn, 'client_speech_end_to_first_audio_ms')}"
            + (" (interrupted)" if turn.get("interrupted") else "")
        )
        if turn.get("agent_text"):
            print(f"    agent: {turn['agent_text']}")
