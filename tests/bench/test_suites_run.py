"""Each benchmark suite runs once, CI-sized, to prove it works (speed is never asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DATA_DIR, REPO

#: ``presence`` as an installed package would run it: from elsewhere, with no ``tests`` package.
WITHOUT_TESTS = "import sys; sys.modules['tests'] = None; from presence.cli import main; sys.exit(main(sys.argv[1:]))"


def installed_presence(*args: str) -> list[str]:
    return [sys.executable, "-c", WITHOUT_TESTS, *args]


INSTALLED_ENV = {**os.environ, "PYTHONPATH": str(REPO), "NO_PROXY": "127.0.0.1,localhost"}


def test_overhead_suite_runs_and_writes_its_json(tmp_path: Path) -> None:
    out = tmp_path / "overhead.json"
    done = subprocess.run(
        [sys.executable, "-m", "presence", "bench", "overhead", "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    assert results["loopback"]["client_confirm_to_first_audio_ms"]["n"] >= 1
    assert {row["what"] for row in results["codec_us"]} >= {"event (turn state)"}


def test_an_unknown_suite_names_the_ones_that_exist() -> None:
    done = subprocess.run([sys.executable, "-m", "presence", "bench", "nope"], capture_output=True, text=True)
    assert done.returncode != 0
    assert "overhead" in done.stderr


@pytest.mark.slow  # two worker processes, nginx and client processes start
def test_scale_suite_runs_at_ci_size(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    done = subprocess.run(
        [sys.executable, "-m", "presence", "bench", "scale", "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    levels = json.loads(out.read_text())["levels"]
    assert [(level["workers"], level["sessions"]) for level in levels] == [(2, 1), (2, 4)]
    assert all(level["overhead_ms"]["n"] == level["sessions"] for level in levels)


def test_cloud_suite_answers_every_turn_of_every_configuration_at_ci_size(tmp_path: Path) -> None:
    """The service fakes ship in presence.testing: the suite needs no source checkout."""
    out = tmp_path / "cloud.json"
    done = subprocess.run(
        installed_presence("bench", "cloud", "--quick", "--json", str(out), "--data", str(DATA_DIR / "timit-sample")),
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env=INSTALLED_ENV,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())["rows"]
    assert {r["configuration"].split(",")[0] for r in rows} == {"gemini", "openai"}
    assert all(r["answered"] == r["turns"] == 1 and r["errors"] == 0 for r in rows)


def test_jitterbuffer_suite_runs_from_the_package_without_the_test_tree(tmp_path: Path) -> None:
    out = tmp_path / "jitterbuffer.json"
    done = subprocess.run(
        installed_presence("bench", "jitterbuffer", "--quick", "--json", str(out)),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=INSTALLED_ENV,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())
    assert {"calm", "spike", "loss"} <= {row["trace"] for row in rows}
    assert all(row["delivered"] > 0 for row in rows)
