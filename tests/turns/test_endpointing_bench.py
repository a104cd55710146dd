"""The endpointing benchmark runs CI-sized on the real data and reports what it promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from presence.bench.endpointing import build_stream, load_speakers

RUN = "import sys; from presence.bench import endpointing as m; sys.exit(m.main(sys.argv[1:]))"


def test_the_corpus_controls_every_pause_and_never_uses_digital_silence(timit_dir: Path) -> None:
    speakers = load_speakers(timit_dir)
    name = sorted(speakers)[0]
    stream = build_stream(name, speakers[name], np.random.default_rng(0))
    assert sum(len(t.pauses) for t in stream.turns) >= 3
    for turn in stream.turns:
        for pause in turn.pauses:
            assert 0.2 * 16000 <= pause.end - pause.start <= 0.9 * 16000
            gap = stream.audio[pause.start : pause.end]
            assert 0 < np.sqrt(np.mean(gap.astype(np.float64) ** 2)) < 0.01
    assert {p.kind for t in stream.turns for p in t.pauses} == {"sentence", "phrase"}


def test_quick_run_writes_the_trade_off(tmp_path: Path, timit_dir: Path) -> None:
    out = tmp_path / "endpointing.json"
    done = subprocess.run(
        [sys.executable, "-c", RUN,
         "--quick", "--json", str(out), "--data", str(timit_dir), "--plot", str(tmp_path / "e.png")],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    rules = {(row["vad"], row["rule"]) for row in results["rows"]}
    assert {("silero", "fixed"), ("silero", "adaptive"), ("energy", "fixed")} <= rules
    for row in results["rows"]:
        assert row["confirm_delay_ms"]["n"] + row["missed_turn_ends"] == results["corpus"]["turns"]
        assert 0.0 <= row["false_cut_in_rate"] <= 1.0
    assert set(results["chosen"]) == {"strict", "mid_sentence"}
    assert (tmp_path / "e.png").stat().st_size > 0
