"""Closed local-engine sessions give back their memory and threads (hardening, issue #12).

A real ``presence serve --engine local`` process; waves of sessions open over real WebSockets,
each says a phrase so its recognizer really decodes speech, and all close mid-utterance. Before
the fix every session ever opened kept its own pocketsphinx decoder (~35-90 MB) and thread.
"""

from __future__ import annotations

import pytest

from presence.bench._server import presence_server
from presence.bench.memory import measure

pytestmark = [pytest.mark.local_models, pytest.mark.slow]

SESSIONS = 8


def test_closed_sessions_return_threads_and_memory_to_the_baseline() -> None:
    with presence_server("--engine", "local", "--max-sessions", str(SESSIONS + 5), startup_s=180) as port:
        result = measure(port, SESSIONS, waves=2, hello_only=False)
    baseline = result["baseline"]
    waves = result["waves"]
    for wave in waves:
        # No thread per session (there were SESSIONS more before the fix, never joined).
        assert wave["peak"]["threads"] <= baseline["threads"] + 3, (baseline, wave)
        assert wave["after_close"]["threads"] <= baseline["threads"] + 3, (baseline, wave)
        # Eight sessions that each kept a decoder left > 300 MB behind, wave after wave.
        assert wave["after_close"]["rss_mb"] - baseline["rss_mb"] < 80, (baseline, wave)
