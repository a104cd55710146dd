"""The presence-vs-Pipecat suite runs once, CI-sized: both systems answer every turn (speed is never asserted).

The first run makes the Pipecat environment (pipecat-ai from PyPI) under PRESENCE_PIPECAT_ENV
or ~/.cache/presence/bench-pipecat; later runs reuse it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DATA_DIR

SYSTEMS = ("presence", "pipecat")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_pipecat_suite_answers_every_turn_on_both_systems_and_reports_ratios(timit_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pipecat.json"
    done = subprocess.run(
        [sys.executable, "-m", "presence", "bench", "pipecat", "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=880,
        env={**os.environ, "PRESENCE_DATA_DIR": str(DATA_DIR)},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    results = json.loads(out.read_text())
    assert [c["setup"] for c in results["comparisons"]] == ["defaults", "equalised"]
    for comparison in results["comparisons"]:
        for name in SYSTEMS:
            system = comparison["systems"][name]
            assert system["turns"] == results["turns"] == 2
            assert system["answered"] == system["turns"], f"{name} left a turn unanswered ({comparison['setup']})"
            assert system["first_audio_ms"]["n"] == system["turns"]
            assert system["reply_chunk_ms"]["p50"] > 0
        assert set(comparison["ratio_presence_over_pipecat"]) == {"p50", "p95", "p99"}
        assert all(r is not None and r > 0 for r in comparison["ratio_presence_over_pipecat"].values())
    equalised = results["comparisons"][1]
    assert all(equalised["systems"][name]["decided_to_audio_ms"]["n"] == 2 for name in SYSTEMS)
    assert "presence / Pipecat" in done.stdout
