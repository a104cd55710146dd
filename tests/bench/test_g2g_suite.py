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


def test_the_cloud_engine_row_points_the_server_at_a_running_service_fake() -> None:
    import urllib.request

    from presence.bench.g2g import ENGINES, cloud_fake
    from presence.config import Settings

    assert ENGINES["openai-fake"] == ("--engine", "openai")
    with cloud_fake("local") as env:
        assert env == {}, "engines without a fake run as they are"
    with cloud_fake("openai-fake") as env:
        model = Settings().openai_model
        request = urllib.request.Request(
            f"{env['PRESENCE_OPENAI_BASE_URL']}/models/{model}",
            headers={"Authorization": f"Bearer {env['OPENAI_API_KEY']}"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert json.loads(answer.read())["id"] == model
