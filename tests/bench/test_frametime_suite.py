"""`presence bench frametime` runs CI-sized: both faces render a conversation and report frame
intervals (speed is never asserted), and it saves the README's pictures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_frametime_suite_measures_both_faces_and_saves_their_pictures(tmp_path: Path, timit_dir: Path) -> None:
    out = tmp_path / "frametime.json"
    cmd = [sys.executable, "-m", "presence", "bench", "frametime", "--quick", "--data", str(timit_dir)]
    cmd += ["--json", str(out), "--screenshots", str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_PROXY": "127.0.0.1,localhost"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=400, cwd=REPO, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    results = {r["face"]: r for r in json.loads(out.read_text())["results"]}
    assert results["2d"]["kind"] == "2d" and results["3d"]["kind"] == "head"
    for face in ("2d", "3d"):
        assert results[face]["frame_ms"]["n"] > 100 and results[face]["turns"] >= 1
        assert (tmp_path / f"face-{face}.png").stat().st_size > 5_000
