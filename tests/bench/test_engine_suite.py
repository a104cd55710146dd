"""`presence bench engine` runs at CI size with the real local models (speed is not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.local_models
@pytest.mark.slow
def test_engine_suite_compares_the_recognisers_and_reports_every_stage(tmp_path: Path) -> None:
    out = tmp_path / "engine.json"
    done = subprocess.run(
        [sys.executable, "-m", "presence", "bench", "engine", "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert [row["asr"] for row in report["asr"]] == [
        "pocketsphinx",
        "whisper-tiny.en (beam 5, default)",
        "whisper-tiny.en (greedy)",
    ]
    for row in report["asr"]:
        assert row["utterances"] == 6 and 0 <= row["wer_pct"] <= 100
        assert row["final_after_pause_ms"]["n"] == 6 and row["cpu_ms_per_audio_s"] > 0
    runs = report["runs"]
    assert [(run["asr"], run["speculation"]) for run in runs] == [
        ("whisper", True),
        ("whisper", False),
        ("pocketsphinx", True),
    ]
    for run in runs:
        assert run["turns"] == 3
        assert run["stages_ms"]["first_audio"]["n"] == 3
    assert runs[0]["stages_ms"]["transcript_after_pause"]["n"] == 3
