"""``presence bench frametime``: what each face costs the page, in headless Chromium.

The same conversation (TIMIT questions from the fake microphone, scripted replies that carry
expression cues) is run once with the 2D face and once with the built-in 3D head (WebGL on
Chromium's CPU rasteriser, SwiftShader, as on a machine without a GPU). The page's own render
loop stamps every frame; the report gives the interval between frames (p50/p95/p99, and the
share over 20 ms, i.e. below 50 fps) and the playback underruns, for each face, measured in one
run. ``--screenshots DIR`` also saves each face mid-reply (the README's pictures).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from presence.bench._stats import summary, table, write_results
from presence.bench.g2g import LEAD_S, data_dir
from presence.testing.browser import chromium
from presence.testing.corpus import compose, timit_utterances, write_wav
from presence.testing.servers import presence_server

FACES = {"2d": "&avatar=2d", "3d": ""}
REPLY = "Wonderful, I am glad you asked! Would you like to hear more about it?"


def run_face(url: str, wav: Path, face: str, turns: int, limit_s: float, shot: Path | None) -> dict[str, Any]:
    with chromium(wav) as context:
        page = context.new_page()
        page.goto(url + "?autostart=1&processing=0" + FACES[face])
        deadline = time.monotonic() + limit_s
        done = "() => [...presence.turns.values()].filter(t => t.server).length"
        shot_taken = shot is None
        while time.monotonic() < deadline and page.evaluate(done) < turns:
            if not shot_taken and page.evaluate("() => presence.playback.heardTimeline(performance.now()) !== null"):
                time.sleep(0.35)  # into the reply: the smile is up and the mouth moves
                page.locator("canvas:not([hidden])").first.screenshot(path=str(shot))
                shot_taken = True
            time.sleep(0.1)
        result: dict[str, Any] = page.evaluate(
            """() => ({kind: presence.state.avatarKind, perf: presence.frames.map(f => f.perfMs),
                 underruns: presence.playback.status.underruns + presence.playback.jitter.stats.underruns,
                 turns: [...presence.turns.values()].filter(t => t.server).length})"""
        )
        return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="presence bench frametime", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one question per face")
    parser.add_argument("--data", help="folder of TIMIT-style <speaker>/<utt>.wav + .phn")
    parser.add_argument("--questions", type=int, default=6)
    parser.add_argument("--screenshots", help="save face-2d.png and face-3d.png here (mid-reply)")
    parser.add_argument("--json")
    parser.add_argument("--md", default="docs/benchmarks/frametime.md")
    args = parser.parse_args(argv)
    timit = data_dir(args.data)
    questions = timit_utterances(timit)[: 1 if args.quick else args.questions]
    audio, _ = compose(timit, [(q, 4.0) for q in questions], lead_s=LEAD_S)
    results = []
    flags = ("--engine", "scripted", "--scripted-reply", REPLY, "--scripted-reply-ms", "2500")
    with tempfile.TemporaryDirectory(prefix="presence-frametime-") as tmp, presence_server(*flags) as port:
        wav = write_wav(Path(tmp) / "questions.wav", audio)
        for face in FACES:
            shot = Path(args.screenshots) / f"face-{face}.png" if args.screenshots else None
            if shot is not None:
                shot.parent.mkdir(parents=True, exist_ok=True)
            page = run_face(f"http://127.0.0.1:{port}/", wav, face, len(questions), 60 + 8 * len(questions), shot)
            perf = np.asarray(page["perf"], dtype=np.float64)
            intervals = np.diff(perf[len(perf) // 20 :]).tolist()  # skip the page's start-up
            stats = summary(intervals, 1)
            over = float(np.mean(np.asarray(intervals) > 20.0)) if intervals else None
            results.append({"face": face, "kind": page["kind"], "turns": page["turns"], "underruns": page["underruns"],
                            "frame_ms": stats, "over_20ms": over})  # fmt: skip
            print(face, page["kind"], stats, f"over 20 ms: {over}", f"underruns: {page['underruns']}", flush=True)
    rows = [
        {
            "face": r["face"] + (f" ({r['kind']})" if r["kind"] not in ("2d", "head") else ""),
            "frames": r["frame_ms"]["n"],
            "p50 ms": r["frame_ms"]["p50"],
            "p95 ms": r["frame_ms"]["p95"],
            "p99 ms": r["frame_ms"]["p99"],
            "> 20 ms": None if r["over_20ms"] is None else f"{100 * r['over_20ms']:.1f} %",
            "underruns": r["underruns"],
            "turns": r["turns"],
        }
        for r in results
    ]
    markdown = "\n\n".join(
        [
            "# Client frame time: 2D face and 3D head",
            f"Command: `presence bench frametime{' --quick' if args.quick else ''}`. Headless Chromium (Debian's, "
            "`--disable-gpu`: WebGL runs on SwiftShader, the CPU) plays the same TIMIT questions to a scripted "
            "engine whose replies carry expression cues, once per face, one after the other in one run; the "
            "interval between the page's rendered frames (requestAnimationFrame) over the whole conversation. "
            "16.7 ms is 60 fps. Underruns: playback ran out of audio (the page was too busy to feed it).",
            table(rows, [(k, k) for k in rows[0]]),
        ]
    )
    write_results(
        {"suite": "frametime", "results": results},
        markdown,
        args.json,
        Path(args.md) if args.md and not args.quick else None,
    )
    return 0
