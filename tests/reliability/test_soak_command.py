"""``presence bench soak`` runs at CI size: real TIMIT turns through a server process, and the fuzz."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.reliability


def test_the_soak_command_reports_turns_latency_per_minute_rss_and_the_fuzz(tmp_path: Path, timit_dir: Path) -> None:
    out = tmp_path / "soak.json"
    command = [sys.executable, "-m", "presence", "bench", "soak", "--quick", "--no-probes", "--fuzz", "500"]
    done = subprocess.run(
        [*command, "--data", str(timit_dir), "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "NO_PROXY": "127.0.0.1,localhost", "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    soak = results["soak"]
    assert soak["turns"] >= 2
    assert soak["completed"] + soak["lost"] == soak["turns"]
    assert soak["per_minute"][0]["turns"] == soak["turns"]
    assert soak["per_minute"][0]["first_audio_ms"]["p99"] is not None
    assert soak["rss_start_mb"] > 0 and soak["rss_end_mb"] > 0
    assert results["fuzz"]["inputs"] == 500
    assert not (tmp_path / "docs").exists(), "a --quick run leaves the committed report alone"
