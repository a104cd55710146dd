"""`presence bench g2g` runs once at CI size in real Chromium (speed is not asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DATA_DIR


@pytest.mark.browser
def test_g2g_suite_measures_every_question_through_the_browser(tmp_path: Path) -> None:
    out = tmp_path / "g2g.json"
    done = subprocess.run(
        [sys.executable, "-m", "presence", "bench", "g2g", "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PRESENCE_DATA_DIR": str(DATA_DIR)},
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())["results"]
    assert [r["transport"] for r in results] == ["websocket", "webrtc"], "both transports in one run"
    for result in results:
        assert result["network"] == "loopback"
        assert len(result["heard_ms"]) == 2 and len(result["mouth_ms"]) == 2, result["transport"]
        assert all(value > 0 for value in result["heard_ms"]), "replies are heard after the question ends"
