"""``presence bench g2g``: glass to glass, in a real browser, through an emulated network.

Headless Chromium (Debian's) loads the web client through the network emulator (a delay-line
TCP proxy: loopback, good Wi-Fi, bad 4G) from a real ``presence serve``. Its fake microphone
plays TIMIT sentences whose speech end is known from the phone alignments. The page measures,
on one clock: speech end → first reply sample heard (scheduled output time plus output
latency), → first open-mouth frame rendered, the A/V offset at the reply's onset (mouth minus
sound), and playback underruns. Engines: scripted with think time 0 and 100 ms, local, and
``openai-fake``: the OpenAI Realtime engine through the real SDK against the service fake of
the test tree (a source checkout only), which streams reply audio faster than real time with
its transcript, as the cloud services do, so lips come from the transcript-aligned animator.
Transports: the WebSocket, and WebRTC (``?transport=webrtc``) with the same profile applied to
the server's UDP sockets (``--webrtc-netem``: delay, per-datagram jitter, loss; in order).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from presence.bench._netem import PROFILES, NetworkEmulator
from presence.bench._stats import summary, table, write_results
from presence.testing.browser import chromium
from presence.testing.corpus import RATE, compose, timit_utterances, write_wav
from presence.testing.servers import presence_server

REPO = Path(__file__).resolve().parents[2]
ENGINES: dict[str, tuple[str, ...]] = {
    "scripted-think-0ms": ("--engine", "scripted", "--scripted-think-ms", "0"),
    "scripted-think-100ms": ("--engine", "scripted", "--scripted-think-ms", "100"),
    "local": ("--engine", "local"),
    "openai-fake": ("--engine", "openai"),
}
#: Engines served by a fake of the cloud service, started for the run (see ``cloud_fake``).
CLOUD_FAKES = frozenset({"openai-fake"})


def data_dir(given: str | None) -> Path:
    """``--data`` is the TIMIT-style folder itself, as in the other suites; by default the
    sample in ``$PRESENCE_DATA_DIR`` (or ../shared/data)."""
    root = Path(os.environ.get("PRESENCE_DATA_DIR", REPO / ".." / "shared" / "data"))
    timit = Path(given) if given else root / "timit-sample"
    if not timit.is_dir() or not timit_utterances(timit):
        raise SystemExit(f"no TIMIT-style <speaker>/<utt>.wav + .phn found in {timit} (set --data)")
    return timit


@contextmanager
def emulator_thread(profile: str, target_port: int) -> Iterator[int]:
    """The network emulator on its own event loop in a thread (Playwright's API is blocking)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port: list[int] = []
    stop = asyncio.Event()

    async def serve() -> None:
        async with NetworkEmulator(PROFILES[profile], "127.0.0.1", target_port, seed=7) as bound:
            port.append(bound)
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the network emulator did not start")
    try:
        yield port[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


@contextmanager
def cloud_fake(engine: str) -> Iterator[dict[str, str]]:
    """For an engine in ``CLOUD_FAKES``, its service fake on its own event loop in a thread;
    yields the environment that points the server at it (nothing for the other engines)."""
    if engine not in CLOUD_FAKES:
        yield {}
        return
    from presence.bench.cloud import KEY
    from presence.testing.fakes import openai_realtime_server as openai_fake  # needs cryptography ([bench])
    from presence.testing.fakes.threaded import running_in_a_thread

    fake = openai_fake.FakeRealtimeServer(openai_fake.FakeModel(think_ms=100, reply_ms=1500))
    with running_in_a_thread(fake.running) as running:
        yield {"OPENAI_API_KEY": KEY, "PRESENCE_OPENAI_BASE_URL": running.base_url}


TRANSPORTS = ("websocket", "webrtc")


def run_page(url: str, wav: Path, turns: int, limit_s: float, transport: str = "websocket") -> dict[str, Any]:
    query = "&transport=webrtc" if transport == "webrtc" else ""
    with chromium(wav) as context:
        page = context.new_page()
        page.goto(url + "?autostart=1&processing=0" + query)  # audio starts from page code, not a gesture
        deadline = time.monotonic() + limit_s
        done = "() => [...presence.turns.values()].filter(t => t.firstMouthPerfMs !== undefined).length"
        while time.monotonic() < deadline and page.evaluate(done) < turns:
            time.sleep(0.2)
        time.sleep(0.3)
        result: dict[str, Any] = page.evaluate(
            """() => ({
              firstBlock: presence.capture.firstBlockPerfMs,
              firstSound: presence.capture.firstSoundSample,
              turns: [...presence.turns.values()].map(t => ({
                heard: t.firstHeardPerfMs, mouth: t.firstMouthPerfMs, scheduled: t.firstScheduledPerfMs,
                responding: t.respondingPerfMs ?? null, server: t.server || null})),
              underruns: presence.rtc ? null
                : presence.playback.status.underruns + presence.playback.jitter.stats.underruns,
              concealedMs: presence.rtc ? Math.round(presence.rtc.net.concealedMs ?? 0) : null,
              rtt: presence.state.rttMs ?? null,
            })"""
        )
        return result


CAPTURE_RATE = 48_000
LEAD_S = 2.0  # silence before the first question: capture starts a few hundred ms after the file
SOUND_LEVEL = 0.01  # the page's firstSoundSample threshold (−40 dBFS)


def file_start_perf_ms(page: dict[str, Any], audio: np.ndarray) -> float:
    """Page time at which the fake microphone's file started, from its first loud sample.

    Chromium starts playing the file when the device opens, before the page's capture runs,
    so capture sample 0 is not file sample 0; the first sample over −40 dBFS is the same
    instant in both.
    """
    loud = np.flatnonzero(np.abs(audio.astype(np.float32) / 32768.0) > SOUND_LEVEL)
    if page["firstSound"] is None or not len(loud):
        raise RuntimeError("the page never captured the fake microphone's speech")
    if page["firstSound"] < CAPTURE_RATE // 50:
        raise RuntimeError("capture began inside the speech: lengthen the lead-in silence")
    sound_perf_ms = page["firstBlock"] + page["firstSound"] / (CAPTURE_RATE / 1000)
    return float(sound_perf_ms - loud[0] / RATE * 1000)


def measure(
    url: str, timit: Path, questions: list[str], gap_s: float, limit_s: float, transport: str = "websocket"
) -> dict[str, Any]:
    audio, marks = compose(timit, [(q, gap_s) for q in questions], lead_s=LEAD_S)
    limit_s = max(limit_s, len(audio) / RATE + 30)  # the whole WAV plays: every question gets its turn
    with tempfile.TemporaryDirectory(prefix="presence-g2g-") as tmp:
        wav = write_wav(Path(tmp) / "questions.wav", audio)
        page = run_page(url, wav, len(questions), limit_s, transport)
    file_start = file_start_perf_ms(page, audio)
    heard, mouth, offset = [], [], []
    waterfall: list[dict[str, float]] = []
    turns = sorted((t for t in page["turns"] if t["heard"] is not None), key=lambda t: t["heard"])
    for mark in marks:
        end = file_start + mark.end_s * 1000
        reply = next((t for t in turns if t["heard"] > end), None)
        if reply is None:
            continue
        heard.append(reply["heard"] - end)
        if reply["mouth"] is not None:
            mouth.append(reply["mouth"] - end)
            offset.append(reply["mouth"] - reply["heard"])
        stages = waterfall_of(reply, end)
        if stages is not None:
            waterfall.append(stages)
    return {
        "heard_ms": heard,
        "mouth_ms": mouth,
        "av_offset_ms": offset,
        "underruns": page["underruns"],
        "concealed_ms": page["concealedMs"],
        "file_ahead_of_capture_ms": round(page["firstBlock"] - file_start, 1),
        "waterfall_ms": waterfall,
    }


STAGES = (
    ("endpointing", "speech end → the page hears the turn is confirmed (VAD + confirmation rule + network)"),
    ("reply", "→ first reply audio reaches the page (engine + presence + network)"),
    ("playout", "→ first reply sample heard (jitter buffer + audio output latency)"),
    ("mouth", "→ first open mouth rendered"),
)


def waterfall_of(turn: dict[str, Any], true_end: float) -> dict[str, float] | None:
    """Where one turn's time went, in ms, as consecutive stages from the true speech end.

    Every stamp is the page's own clock (no cross-machine clock maths): when the 'responding'
    event arrived, when the reply's first audio frame arrived, when it is heard, and the first
    open-mouth frame.
    """
    if turn["responding"] is None or turn["scheduled"] is None or turn["mouth"] is None:
        return None
    return {
        "endpointing": turn["responding"] - true_end,
        "reply": turn["scheduled"] - turn["responding"],
        "playout": turn["heard"] - turn["scheduled"],
        "mouth": turn["mouth"] - turn["heard"],
    }


def plot_waterfall(results: list[dict[str, Any]], path: Path) -> None:
    """Stacked bars of the median of each stage, one bar per engine and network."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['engine']} / {r['rule']} / {r['transport']} / {r['network']}" for r in results if r["waterfall_ms"]]
    medians = [
        [float(np.median([w[key] for w in r["waterfall_ms"]])) for key, _ in STAGES]
        for r in results
        if r["waterfall_ms"]
    ]
    height = 0.45 * len(labels) + 2.6
    fig, ax = plt.subplots(figsize=(9, height))
    left = np.zeros(len(labels))
    for index, (_, description) in enumerate(STAGES):
        widths = np.array([m[index] for m in medians])
        ax.barh(labels, widths, left=left, label=description)
        left += widths
    ax.invert_yaxis()
    ax.set_xlabel("ms after the true end of the user's speech (median of each stage)")
    ax.set_title("presence bench g2g: where the time goes")
    fig.legend(loc="lower center", fontsize=8, ncol=1, frameon=False)
    fig.tight_layout(rect=(0, 1.1 / height, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def server_runs(transports: list[str], profiles: list[str]) -> Iterator[tuple[str, list[str], dict[str, str]]]:
    """One server for every WebSocket profile (the TCP emulator is outside it); one per profile
    for WebRTC, whose emulated network is inside the server (its UDP sockets)."""
    for transport in transports:
        if transport == "websocket":
            yield transport, profiles, {}
        elif transport == "webrtc":
            for profile in profiles:
                yield transport, [profile], {"PRESENCE_WEBRTC_NETEM": profile}
        else:
            raise SystemExit(f"unknown transport {transport!r}; choose from {', '.join(TRANSPORTS)}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="presence bench g2g", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one engine, loopback, two questions")
    parser.add_argument("--data", help="folder of TIMIT-style <speaker>/<utt>.wav + .phn")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated, from: " + ", ".join(ENGINES))
    parser.add_argument("--profiles", default="loopback,wifi,4g", help="network profiles: " + ", ".join(PROFILES))
    parser.add_argument("--transports", default=",".join(TRANSPORTS), help="comma-separated, from: websocket, webrtc")
    parser.add_argument("--questions", type=int, default=20, help="turns per row, from as many speakers as there are")
    parser.add_argument(
        "--confirm-rules",
        default="fixed",
        help="comma-separated turn-confirmation rules, one row each: fixed (800 ms), adaptive, predictor",
    )
    parser.add_argument("--json")
    parser.add_argument("--md", default="docs/benchmarks/g2g.md")
    parser.add_argument("--plot", default="docs/benchmarks/g2g.png", help="waterfall PNG (not with --quick)")
    args = parser.parse_args(argv)
    timit = data_dir(args.data)
    engines = ["scripted-think-0ms"] if args.quick else [e.strip() for e in args.engines.split(",")]
    profiles = ["loopback"] if args.quick else [p.strip() for p in args.profiles.split(",")]
    transports = [t.strip() for t in args.transports.split(",")]
    questions = timit_utterances(timit)[: 2 if args.quick else args.questions]
    rules = [r.strip() for r in args.confirm_rules.split(",") if r.strip()]
    results: list[dict[str, Any]] = []
    for engine, rule in [(e, r) for e in engines for r in rules]:
        local = engine == "local"
        for transport, profile_group, env in server_runs(transports, profiles):
            with (
                cloud_fake(engine) as fake_env,
                presence_server(*ENGINES[engine], "--confirm-rule", rule, env={**env, **fake_env}) as server_port,
            ):
                for profile in profile_group:
                    with emulator_thread(profile, server_port) as port:
                        found = measure(
                            f"http://127.0.0.1:{port}/",
                            timit,
                            questions,
                            gap_s=9.0 if local else 4.0,
                            limit_s=120,
                            transport=transport,
                        )
                    row = {"engine": engine, "rule": rule, "transport": transport, "network": profile}
                    results.append({**row, **found})
                    print(
                        engine,
                        rule,
                        transport,
                        profile,
                        {k: summary(v) for k, v in found.items() if isinstance(v, list) and k != "waterfall_ms"},
                        flush=True,
                    )
    rows = []
    for r in results:
        h, m, o = summary(r["heard_ms"], 0), summary(r["mouth_ms"], 0), summary(r["av_offset_ms"], 1)
        rows.append(
            {
                "engine": r["engine"],
                "rule": r["rule"],
                "transport": r["transport"],
                "network": r["network"],
                "turns": h["n"],
                "heard p50": h["p50"],
                "heard p95": h["p95"],
                "heard p99": h["p99"],
                "mouth p50": m["p50"],
                "mouth p99": m["p99"],
                "A/V p1": round(float(np.percentile(r["av_offset_ms"], 1)), 1) if r["av_offset_ms"] else None,
                "A/V p50": o["p50"],
                "A/V p99": o["p99"],
                "underruns": r["underruns"] if r["underruns"] is not None else "–",
                "concealed ms": r["concealed_ms"] if r["concealed_ms"] is not None else "–",
            }
        )
    columns = [(k, k) for k in rows[0]] if rows else []
    stage_rows = [
        {
            "engine": r["engine"],
            "rule": r["rule"],
            "transport": r["transport"],
            "network": r["network"],
            **{key: summary([w[key] for w in r["waterfall_ms"]], 0)["p50"] for key, _ in STAGES},
        }
        for r in results
        if r["waterfall_ms"]
    ]
    plot = Path(args.plot) if args.plot and not args.quick else None
    if plot is not None and stage_rows:
        plot_waterfall(results, plot)
    markdown = "\n\n".join(
        [
            "# Glass to glass in headless Chromium",
            f"Command: `{' '.join(['presence bench g2g', *argv])}`. Per turn, ms from the true end of "
            "speech in the fake microphone's WAV (TIMIT phone alignment) to the first reply sample heard "
            "(scheduled output time + output latency) and to the first open-mouth frame rendered; A/V = mouth − "
            "sound at the reply's onset (positive: mouth late; the goal is p1 ≥ −15 and p99 ≤ +45). "
            "The WAV is placed on the page clock by its first "
            "sample over −40 dBFS (Chromium starts the file before the page's capture runs). Silero VAD; rule "
            "fixed = the default, confirmation after 800 ms of silence (about 0.9 s of every number), predictor "
            "= the end-of-turn predictor at its trained threshold with 800 ms as its fallback (see "
            "endpointing.md). Networks: loopback; wifi 20 ms RTT ± 5 ms; "
            "4g 80 ms RTT ± 40 ms with 2 % of chunks stalled for a retransmission. WebRTC rows: the page and "
            "its signalling through the same TCP emulator, and the same profile on the server's UDP sockets "
            "(half the RTT each way, jitter per datagram kept in order, 2 % of datagrams lost on 4g); "
            "heard = when `getSynchronizationSources()` first reports the reply playing; underruns: the page's "
            "playout underruns (WebSocket); concealed ms: NetEQ's audible concealment over the session "
            "(`concealedSamples − silentConcealedSamples` from `getStats()`, WebRTC).",
            table(rows, columns),
            "## Where the time goes (median ms of each consecutive stage)",
            "; ".join(f"**{key}**: {description}" for key, description in STAGES) + ".",
            table(stage_rows, [(k, k) for k in stage_rows[0]]) if stage_rows else "(no complete turns)",
            f"![waterfall]({plot.name})" if plot is not None else "",
        ]
    )
    write_results(
        {"suite": "g2g", "results": results}, markdown, args.json, Path(args.md) if args.md and not args.quick else None
    )
    return 0
