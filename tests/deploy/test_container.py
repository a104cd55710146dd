"""deploy/Dockerfile's entry point, run as a plain process with the image's environment (CI
has no container runtime): it refuses to listen on all interfaces without a token secret, and
with one it serves two workers whose probes answer, then drains and exits on SIGTERM."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from presence.testing.servers import free_port
from tests.conftest import REPO
from tests.server.test_load_balancing import wait_until

DOCKERFILE = REPO / "deploy" / "Dockerfile"


def image_environment() -> dict[str, str]:
    """The ENV instructions (KEY=VALUE pairs, with continuation lines), PATH left to the host."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                key, _, value = pair.partition("=")
                env[key] = value
    env.pop("PATH", None)
    return env


def entry_point() -> list[str]:
    (line,) = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith("ENTRYPOINT ")]
    command = json.loads(line.removeprefix("ENTRYPOINT "))
    assert isinstance(command, list)
    return [str(part) for part in command]


def run_entry_point(extra_env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    command = entry_point()
    assert command[0] == "presence", "the console script the image's venv puts on PATH"
    env = {**os.environ, **image_environment(), **extra_env, "PYTHONPATH": str(REPO)}
    with log.open("wb") as out:
        # `presence` is `python -m presence.cli` (the console script of pyproject.toml).
        return subprocess.Popen(
            [sys.executable, "-m", "presence.cli", *command[1:]], cwd=REPO, env=env, stdout=out, stderr=out
        )


def test_the_image_sets_all_interfaces_two_workers_and_a_drain() -> None:
    env = image_environment()
    assert env["PRESENCE_HOST"] == "0.0.0.0" and env["PRESENCE_WORKERS"] == "2"
    assert float(env["PRESENCE_DRAIN_TIMEOUT_S"]) > 0
    assert entry_point() == ["presence", "serve"]


def test_the_entry_point_refuses_to_serve_all_interfaces_without_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"PRESENCE_ENGINE": "scripted", "PRESENCE_PORT": str(free_port())}
    monkeypatch.delenv("PRESENCE_AUTH_SECRET", raising=False)
    process = run_entry_point(env, tmp_path / "log")
    assert process.wait(60) == 2
    assert "PRESENCE_AUTH_SECRET" in (tmp_path / "log").read_text()


@pytest.mark.slow
def test_the_entry_point_serves_its_probes_and_drains_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "PRESENCE_ENGINE": "scripted",  # the image's default engine loads real models; not here
        "PRESENCE_VAD": "energy",
        "PRESENCE_PORT": str(port),
        "PRESENCE_AUTH_SECRET": "a secret for this test, long enough to be accepted",
    }
    process = run_entry_point(env, tmp_path / "log")
    try:

        def answers(path: str) -> bool:
            if process.poll() is not None:
                raise AssertionError((tmp_path / "log").read_text())
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as answer:
                    return bool(answer.status == 200)
            except OSError:
                return False

        wait_until(lambda: answers("/readyz"), 60, "the readiness probe")
        assert answers("/healthz")
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, (tmp_path / "log").read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
