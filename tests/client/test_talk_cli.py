"""`presence serve` and `presence talk` as a user runs them: two processes, real speech."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from presence.testing.servers import ServerDidNotStart, free_port, stop_process, wait_until_answers


@pytest.fixture
def served() -> Iterator[int]:
    port = free_port()
    env = {**os.environ, "PRESENCE_SCRIPTED_REPLY": "Nice to meet you."}
    proc = subprocess.Popen(
        [sys.executable, "-m", "presence", "serve", "--engine", "scripted", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        try:
            wait_until_answers(f"http://127.0.0.1:{port}/healthz", proc, 30, lambda: "")
        except ServerDidNotStart as exc:
            pytest.fail(str(exc))
        yield port
    finally:
        stop_process(proc)
        out, _ = proc.communicate(timeout=10)
        assert f"open http://127.0.0.1:{port}/" in out


def test_talk_streams_a_wav_and_saves_reply_audio_animation_and_turns(
    served: int, timit_dir: Path, tmp_path: Path
) -> None:
    wav = timit_dir / "dr1-fvmh0" / "sa1.wav"
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "presence",
            "talk",
            str(wav),
            "--url",
            f"ws://127.0.0.1:{served}/v1/session",
            "--out",
            str(out),
            "--settle",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "turn 1:" in result.stdout and "Nice to meet you." in result.stdout
    with wave.open(str(out / "reply.wav")) as reply:
        assert reply.getframerate() == 24_000 and reply.getnframes() > 24_000 // 2
    rows = [json.loads(line) for line in (out / "animation.jsonl").read_text().splitlines()]
    assert len(rows) > 30 and set(rows[0]["weights"]) >= {"sil", "aa", "PP"}
    assert max(1 - row["weights"]["sil"] for row in rows) > 0.5, "the mouth opened"
    turns = json.loads((out / "turns.json").read_text())
    turn = turns["turns"][0]
    assert turn["agent_text"] == "Nice to meet you."
    for key in ("turn_confirmed_ms", "engine_first_audio_ms", "first_audio_sent_ms", "first_animation_sent_ms"):
        assert turn[key] is not None


def test_talk_explains_a_file_that_is_not_a_wav(served: int, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.wav"
    bogus.write_text("not audio")
    result = subprocess.run(
        [sys.executable, "-m", "presence", "talk", str(bogus), "--url", f"ws://127.0.0.1:{served}/v1/session"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "not a PCM WAV" in result.stderr
