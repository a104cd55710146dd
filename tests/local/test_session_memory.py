"""Closed local-engine sessions give back their memory and threads (hardening, issue #12).

A real ``presence serve --engine local`` process; waves of sessions open over real WebSockets,
each says a phrase so its recognizer really decodes speech, and all close mid-utterance. Before
the fix every session ever opened kept its own pocketsphinx decoder (~35-90 MB) and thread.
"""

from __future__ import annotations

import pytest

from presence.bench.memory import measure, server_flags
from presence.testing.servers import presence_server

pytestmark = [pytest.mark.local_models, pytest.mark.slow]


# pocketsphinx lends each speaking session a ~90 MB decoder (4 are plenty to see a leak);
# Whisper keeps only the session's audio.
@pytest.mark.parametrize(("asr", "sessions", "waves"), [("whisper", 8, 2), ("pocketsphinx", 4, 1)])
def test_closed_sessions_return_threads_and_memory_to_the_baseline(asr: str, sessions: int, waves: int) -> None:
    flags = (*server_flags("local", sessions), "--asr", asr)
    with presence_server(*flags, startup_s=180) as port:
        result = measure(port, sessions, waves, hello_only=False)
    baseline = result["baseline"]
    measured = result["waves"]
    for wave in measured:
        # No thread per session (before the fix: one more per session, while it was open).
        assert wave["peak"]["threads"] <= baseline["threads"] + 3, (baseline, wave)
        assert wave["after_close"]["threads"] <= baseline["threads"] + 3, (baseline, wave)
        # Before the fix every session left its decoder behind (2 waves of 8: +1.5 GB).
        assert wave["after_close"]["rss_mb"] - baseline["rss_mb"] < 150, (baseline, wave)
    for later in measured[1:]:
        # What the first wave allocated once (buffers, caches) is reused, not added to.
        assert later["after_close"]["rss_mb"] - measured[0]["after_close"]["rss_mb"] < 30, measured
        assert later["after_close"]["threads"] <= measured[0]["after_close"]["threads"], measured
