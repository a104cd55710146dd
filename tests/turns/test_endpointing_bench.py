"""The endpointing benchmark runs CI-sized on the real data and reports what it promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from presence.audio.vad import WINDOW_SAMPLES
from presence.endofturn.asr_replay import oracle_transcripts, whisper_transcripts
from presence.endofturn.text import words
from presence.testing.corpus import build_stream, load_speakers

RUN = "import sys; from presence.bench import endpointing as m; sys.exit(m.main(sys.argv[1:]))"


def test_the_corpus_controls_every_pause_and_never_uses_digital_silence(timit_dir: Path) -> None:
    speakers = load_speakers(timit_dir)
    name = sorted(speakers)[0]
    stream = build_stream(name, speakers[name], np.random.default_rng(0))
    assert sum(len(t.pauses) for t in stream.turns) >= 3
    for turn in stream.turns:
        for pause in turn.pauses:
            assert 0.2 * 16000 <= pause.end - pause.start <= 0.9 * 16000
            gap = stream.audio[pause.start : pause.end]
            assert 0 < np.sqrt(np.mean(gap.astype(np.float64) ** 2)) < 0.01
    assert {p.kind for t in stream.turns for p in t.pauses} == {"sentence", "phrase"}


@pytest.mark.bench
def test_quick_run_writes_the_trade_off(tmp_path: Path, timit_dir: Path) -> None:
    out = tmp_path / "endpointing.json"
    done = subprocess.run(
        [sys.executable, "-c", RUN,
         "--quick", "--json", str(out), "--data", str(timit_dir), "--plot", str(tmp_path / "e.png")],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    rules = {(row["vad"], row["rule"], row["words"]) for row in results["rows"]}
    assert {("silero", "fixed", "—"), ("silero", "adaptive", "—"), ("energy", "fixed", "—")} <= rules
    assert {("silero", "predictor", w) for w in ("pocketsphinx", "none", "oracle")} <= rules
    for row in results["rows"]:
        assert row["confirm_delay_ms"]["n"] + row["missed_turn_ends"] == results["corpus"]["turns"]
        assert 0.0 <= row["false_cut_in_rate"] <= 1.0
        assert set(row["cut_in_rate_per_pause"]) == {"sentence", "phrase"}
    assert set(results["chosen"]) == {"strict", "mid_sentence", "predictor"}
    assert results["chosen"]["predictor"]["words"] == "pocketsphinx"  # never the oracle's words
    assert results["asr_answer_ms"]["pocketsphinx"]["n"] > 0
    lags = {row["setting"]: row for row in results["endpoint_lag"]}
    assert "presence default (0.5 / 0.35)" in lags
    assert all(row["end_lag_ms"]["n"] == results["corpus"]["turns"] for row in lags.values())
    assert (tmp_path / "e.png").stat().st_size > 0


def test_oracle_words_are_the_reference_words_heard_before_each_onset(timit_dir: Path) -> None:
    speakers = load_speakers(timit_dir)
    name = sorted(speakers)[0]
    stream = build_stream(name, speakers[name], np.random.default_rng(0))
    turn = stream.turns[0]
    got = oracle_transcripts(stream.turns, stream.words, [turn.speech_end], len(stream.audio))
    said = [w for a, b, w in stream.words if turn.speech_start <= a and b <= turn.speech_end]
    assert len(got) == 1 and got[0].text == " ".join(said) and len(said) >= 4
    assert got[0].covers_until == turn.speech_end  # ready one window later, as the session would ask
    for t in stream.turns:  # every turn's words lie inside its speech
        assert any(t.speech_start <= a < b <= t.speech_end for a, b, _ in stream.words)


@pytest.mark.slow
def test_whisper_partials_are_ready_only_after_their_decode(timit_dir: Path) -> None:
    speakers = load_speakers(timit_dir)
    name = sorted(speakers)[0]
    stream = build_stream(name, speakers[name], np.random.default_rng(0))
    turn = stream.turns[0]
    got, costs = whisper_transcripts(stream.audio, stream.turns, [turn.speech_end])
    assert len(got) == len(costs) == 1 and costs[0] > 0
    assert got[0].covers_until == turn.speech_end
    assert got[0].ready_at >= turn.speech_end + WINDOW_SAMPLES + int(costs[0] * 16)  # a whole decode later
    said = {w for a, b, w in stream.words if turn.speech_start <= a and b <= turn.speech_end}
    heard = set(words(got[0].text))
    assert len(said & heard) >= len(said) // 2, (said, got[0].text)
