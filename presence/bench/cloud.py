"""``presence bench cloud``: who should end the user's turn with a cloud speech model?

Gemini Live can be driven by presence's turn-taking (its activity detection off, explicit
activity start/end) or by its own detection (``--gemini-turns model``). This suite measures
both, and OpenAI Realtime (always presence-driven), through the real SDKs against the local
fakes of the services in the test tree, so it runs from a source checkout only.

Per turn, a Python client streams one real TIMIT sentence (from ../shared/data) at real-time
pace, then silence, to an in-process presence server; the time measured is from sending the
frame with the sentence's true speech end (from its phone alignment) to the first reply
audio frame received. The fakes think for ``--think-ms`` and the fake Gemini's own detector
ends a turn after ``silence_duration_ms`` of silence, like the service's. Configurations
alternate turn by turn, so machine noise lands on all of them alike.

What it shows: with model turns the first audio comes at (model's silence + think), with
presence turns at (presence's confirmation + think). The fake's detector is an energy gate,
not Google's model: against the real service only the presence-turns figure carries over.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import numpy as np

from presence.bench._stats import summary, table, write_results
from presence.bench.g2g import data_dir
from presence.client.connection import PresenceClient
from presence.config import Settings
from presence.engines.base import Engine
from presence.engines.gemini import GeminiLiveEngine, TurnMode
from presence.engines.openai_realtime import OpenAIRealtimeEngine
from presence.testing.corpus import compose, timit_utterances
from presence.testing.servers import serve_in_process

REPO = Path(__file__).resolve().parents[2]
FRAME = 320  # 20 ms at 16 kHz
KEY = "bench-key-not-secret"


async def _one_turn(
    url: str, audio: np.ndarray, speech_end: int, limit_s: float, fake_first_audio: list[float]
) -> dict[str, Any]:
    """Speak one sentence; ms from its true end to the first reply audio, and the turn's record.

    ``fake_first_audio`` is the fake service's list of first-audio send times (same clock): the
    difference to the client's first reply frame is what the SDK and presence add."""
    replies_before = len(fake_first_audio)
    client = PresenceClient(url)
    await client.connect()
    await asyncio.sleep(0.5)  # the engine connects to the (fake) service in the background
    start = time.monotonic()
    record: dict[str, Any] | None = None
    try:
        for index, offset in enumerate(range(0, len(audio), FRAME)):
            await asyncio.sleep(max(0.0, start + index * FRAME / 16_000 - time.monotonic()))
            await client.send_audio(audio[offset : offset + FRAME])
            if client.received.audio and offset > speech_end:
                break
        silence = np.zeros(FRAME, np.float32)
        deadline = time.monotonic() + limit_s
        while not client.received.audio and time.monotonic() < deadline:
            await client.send_audio(silence)
            await asyncio.sleep(FRAME / 16_000)
        with contextlib.suppress(TimeoutError):
            record = await client.wait_for_event(lambda b: b.get("type") == "metrics", limit_s)
    finally:
        await client.close()
    sent = client.sent_time_of(speech_end)
    heard = client.received.audio[0][0] if client.received.audio else None
    fake_sent = fake_first_audio[replies_before] if len(fake_first_audio) > replies_before else None
    return {
        "first_audio_ms": None if sent is None or heard is None else (heard - sent) * 1000,
        "engine_added_ms": None if fake_sent is None or heard is None else (heard - fake_sent) * 1000,
        "confirmed_ms": None if record is None else record.get("turn_confirmed_ms"),
        "error": None if record is None else record.get("error"),
    }


async def measure(turns: int, think_ms: int, timit: Path) -> dict[str, Any]:
    from presence.testing.fakes import gemini_live_server as gemini_fake  # needs cryptography ([bench])
    from presence.testing.fakes import openai_realtime_server as openai_fake

    gemini = gemini_fake.FakeGeminiLive(gemini_fake.FakeModel(think_ms=think_ms, realtime=True))
    openai = openai_fake.FakeRealtimeServer(openai_fake.FakeModel(think_ms=think_ms, realtime=True))
    settings = Settings(engine="scripted", log_level="warning")  # presence's own defaults for turns

    def gemini_engine(turns_by: TurnMode, silence_ms: int | None) -> GeminiLiveEngine:
        return GeminiLiveEngine(
            KEY, turns=turns_by, model_silence_ms=silence_ms, base_url=gemini.base_url, ssl_context=gemini.client_ssl
        )

    sentences = [compose(timit, [(q, 0.0)], lead_s=0.3) for q in timit_utterances(timit)[:6]]
    async with gemini.running(), openai.running():
        short = Settings(engine="scripted", log_level="warning", confirm_ms=300)
        gemini_sent, openai_sent = gemini.recorded.first_audio_sent, openai.recorded.first_audio_sent
        configs: dict[str, tuple[Settings, Engine, list[float]]] = {
            "gemini, presence turns (defaults)": (settings, gemini_engine("presence", None), gemini_sent),
            "gemini, presence turns (confirm 300 ms)": (short, gemini_engine("presence", None), gemini_sent),
            "gemini, model turns (silence 500 ms)": (settings, gemini_engine("model", 500), gemini_sent),
            "gemini, model turns (silence 300 ms)": (settings, gemini_engine("model", 300), gemini_sent),
            "openai, presence turns (defaults)": (
                settings,
                OpenAIRealtimeEngine(KEY, base_url=openai.base_url),
                openai_sent,
            ),
        }
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name in configs}
        async with contextlib.AsyncExitStack() as stack:
            urls = {}
            for name, (s, e, _) in configs.items():
                urls[name] = (await stack.enter_async_context(serve_in_process(s, e))).url
            for turn in range(turns):
                audio16, marks = sentences[turn % len(sentences)]
                audio = audio16.astype(np.float32) / 32768
                tail = np.zeros(16_000 * 3, np.float32)
                speech_end = int(marks[0].end_s * 16_000)
                for name, url in urls.items():
                    fake_sent = configs[name][2]
                    turn_audio = np.concatenate([audio, tail])
                    samples[name].append(await _one_turn(url, turn_audio, speech_end, 10, fake_sent))
    rows = []
    for name, got in samples.items():
        first = [s["first_audio_ms"] for s in got if s["first_audio_ms"] is not None]
        confirmed = [s["confirmed_ms"] for s in got if s["confirmed_ms"] is not None]
        added = [s["engine_added_ms"] for s in got if s["engine_added_ms"] is not None]
        rows.append(
            {
                "configuration": name,
                "turns": len(got),
                "answered": len(first),
                "errors": sum(1 for s in got if s["error"]),
                "before_speech_end": sum(1 for v in first if v < 0),
                "first_audio_ms": summary(first, 1),
                "confirmed_after_last_speech_ms": summary(confirmed, 1),
                "engine_added_ms": summary(added, 2),
            }
        )
    return {"think_ms": think_ms, "rows": rows, "confirm_ms": settings.confirm_ms, "vad": settings.vad}


def markdown(results: dict[str, Any]) -> str:
    flat = [
        {
            "configuration": r["configuration"],
            "answered": f"{r['answered']}/{r['turns']}",
            "cut in (reply before speech end)": r["before_speech_end"],
            **{f"first audio {k}": r["first_audio_ms"][k] for k in ("p50", "p95", "p99")},
            "confirmed p50": r["confirmed_after_last_speech_ms"]["p50"],
        }
        for r in results["rows"]
    ]
    added = [
        {"configuration": r["configuration"], **{k: r["engine_added_ms"][k] for k in ("p50", "p95", "p99")}}
        for r in results["rows"]
    ]
    columns = [(k, k) for k in flat[0]]
    return "\n".join(
        [
            "# Cloud engines: who ends the turn (`presence bench cloud`)",
            "",
            f"Through the real SDKs against the local fakes (think time {results['think_ms']} ms), real TIMIT",
            "sentences streamed at real-time pace; ms from the true speech end to the first reply audio frame",
            f"received. presence turns use the server defaults ({results['vad']} VAD, confirmation after",
            f"{results['confirm_ms']} ms of silence) unless the row says otherwise; model turns keep presence's",
            "defaults too (its rule confirms only if the model has not answered first). Configurations",
            "alternate turn by turn.",
            "",
            table(flat, columns),
            "",
            "What the SDK and presence add: the fake service's first audio message sent → the client's",
            "first reply audio frame received (one process, one clock; includes the SDK's receive, the",
            "engine, the session, the audio animator and both loopback hops), ms:",
            "",
            table(added, [(k, k) for k in added[0]]),
            "",
            "The fake Gemini's detector is an energy gate with the configured silence, not Google's model:",
            "the comparison says where the time goes, not how the real service's detector behaves.",
            "",
        ]
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="presence bench cloud", description=__doc__)
    parser.add_argument("--turns", type=int, default=12, help="turns per configuration")
    parser.add_argument("--think-ms", type=int, default=100, help="the fake models' think time")
    parser.add_argument("--quick", action="store_true", help="one turn each (CI)")
    parser.add_argument("--data", help="TIMIT sample folder (default ../shared/data)")
    parser.add_argument("--json", help="write the results here as JSON")
    parser.add_argument("--md", default=str(REPO / "docs" / "benchmarks" / "cloud.md"), help="Markdown output")
    args = parser.parse_args(argv)
    results = asyncio.run(measure(1 if args.quick else args.turns, args.think_ms, data_dir(args.data)))
    text = markdown(results)
    write_results(results, text, args.json, None if args.quick else Path(args.md))
    return 0
