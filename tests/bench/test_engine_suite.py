"""`presence bench engine` runs at CI size with the real local models (speed is not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.local_models
def test_engine_suite_reports_every_stage_for_both_modes(tmp_path: Path) -> None:
    out = tmp_path / "engine.json"
    done = subprocess.run(
        [sys.executable, "-m", "presence", "bench", "engine", "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    runs = json.loads(out.read_text())["runs"]
    assert [run["speculation"] for run in runs] == [True, False]
    for run in runs:
        assert run["turns"] == 3
        assert run["stages_ms"]["first_audio"]["n"] == 3
