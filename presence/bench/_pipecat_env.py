"""The Pipecat side of ``presence bench pipecat``: its own virtual environment (made on first
use from pipecat-ai on PyPI, pinned), and its bot (_pipecat_app.py) as a server process."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from presence.audio.pcm import float_to_s16le
from presence.engines.scripted import SAMPLE_RATE as REPLY_RATE
from presence.engines.scripted import synth_voice
from presence.testing.servers import free_port

PIPECAT_VERSION = "1.14.0"
PIPECAT_REQUIREMENT = f"pipecat-ai[websocket,silero]=={PIPECAT_VERSION}"
APP = Path(__file__).with_name("_pipecat_app.py")
REPLY_VOICES = 8  # presence's scripted engine speaks synth_voice(seed=turn % 8)


def pipecat_env_dir() -> Path:
    default = Path.home() / ".cache" / "presence" / "bench-pipecat"
    return Path(os.environ.get("PRESENCE_PIPECAT_ENV", default))


def _installed_version(python: Path) -> str | None:
    probe = "import importlib.metadata as m; print(m.version('pipecat-ai'))"
    try:
        done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=60)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_pipecat_env(env: Path) -> Path:
    """The Python of a virtual environment holding the pinned Pipecat; made or updated if needed.

    Pipecat's Silero VAD and Smart Turn run on onnxruntime with models inside the wheel, so
    nothing is downloaded at run time and torch is never installed.
    """
    python = env / "bin" / "python"
    if python.exists() and _installed_version(python) == PIPECAT_VERSION:
        print(f"pipecat: using {env} (pipecat-ai {PIPECAT_VERSION})", flush=True)
        return python
    if not python.exists():
        print(f"pipecat: creating a virtual environment in {env}", flush=True)
        base = getattr(sys, "_base_executable", sys.executable)
        made = subprocess.run([base, "-m", "venv", str(env)], capture_output=True, text=True)
        if made.returncode != 0:
            raise SystemExit(f"pipecat: could not create {env}: {made.stderr.strip()}")
    print(f"pipecat: installing {PIPECAT_REQUIREMENT} from PyPI (a minute or two, once)", flush=True)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet", PIPECAT_REQUIREMENT]
    installed = subprocess.run(pip, capture_output=True, text=True)
    if installed.returncode != 0 or _installed_version(python) != PIPECAT_VERSION:
        tail = "\n".join((installed.stderr or installed.stdout).strip().splitlines()[-15:])
        raise SystemExit(
            f"pipecat: installing {PIPECAT_REQUIREMENT} into {env} failed (is PyPI reachable?):\n{tail}\n"
            f"Remove {env} or set PRESENCE_PIPECAT_ENV to try a fresh environment."
        )
    return python


def write_replies(folder: Path, reply_ms: int) -> None:
    """The reply voices presence's scripted engine speaks, as s16le files for the Pipecat bot."""
    for seed in range(REPLY_VOICES):
        (folder / f"reply_{seed}.pcm").write_bytes(float_to_s16le(synth_voice(reply_ms, REPLY_RATE, seed)))


@contextlib.contextmanager
def pipecat_server(python: Path, replies: Path, *flags: str, startup_s: float = 120) -> Iterator[int]:
    """Run the Pipecat bot on a free loopback port; yields the port once it listens."""
    port = free_port()
    with tempfile.TemporaryFile(mode="w+") as log:
        # -I: isolated, so neither this folder (whose pipecat.py would shadow the real package)
        # nor PYTHONPATH reaches the Pipecat environment.
        proc = subprocess.Popen(
            [str(python), "-I", str(APP), "--port", str(port), "--replies", str(replies), *flags],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        try:
            assert proc.stdout is not None
            deadline = time.monotonic() + startup_s
            line = ""
            while time.monotonic() < deadline and proc.poll() is None:
                line = proc.stdout.readline()
                if line.startswith("READY"):
                    break
            if not line.startswith("READY"):
                log.seek(0)
                raise RuntimeError(f"the Pipecat bot did not start: {log.read()[-3000:]}")
            yield port
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
