"""``presence bench pipecat``: presence and Pipecat side by side, on the same scripted work.

Both frameworks serve the same bot over a loopback WebSocket: a scripted reply (the same
1.2 s of presence's synthetic voice, 24 kHz, after the same think time) to real speech (TIMIT
sentences from ../shared/data). One Python client drives both, through a thin adapter per wire
format (presence's protocol; raw PCM messages for Pipecat), each connection fed like a live
microphone (20 ms frames in real time, the speaker's background noise between sentences), and
the two alternate turn by turn in the same run, so machine noise lands on both alike.

Per turn the client measures, from sending the frame that holds the last speech sample (the
TIMIT alignment gives the true end of speech) to receiving the first reply audio byte:

(a) time to first audio, each framework at its own default turn-taking (presence: Silero VAD,
    800 ms of silence; Pipecat: Silero VAD stopping after 0.2 s, then its Smart Turn v3 model),
    with the think time given by ``--think-ms``;
(b) overhead with endpointing equalised: both wait the same fixed silence (``--silence-ms``,
    Silero VAD in both, nothing after it) and think for 0 ms, and that silence is subtracted;
(c) that overhead split, from each server's report of the input frame that ended the turn, into
    endpoint lag (how late the VAD saw the end) and decision → first audio (the framework).

and, for every reply, the arrival jitter of its audio: gaps between chunks and how late each
chunk is against playing the reply from its first byte (the jitter buffer a client needs).
Pipecat runs in its own virtual environment, made on first use (``PRESENCE_PIPECAT_ENV``,
default ``~/.cache/presence/bench-pipecat``), from ``pipecat-ai`` on PyPI.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import websockets
from websockets.asyncio.client import ClientConnection

from presence.audio.pcm import Float32, float_to_s16le
from presence.bench._stats import git_revision, machine, summary, table, write_results
from presence.client.connection import PresenceClient
from presence.engines.scripted import SAMPLE_RATE as REPLY_RATE
from presence.engines.scripted import synth_voice
from presence.testing.corpus import DEFAULT_TIMIT as DEFAULT_DATA
from presence.testing.corpus import Utterance, load_speakers
from presence.testing.servers import free_port, presence_server

PIPECAT_VERSION = "1.14.0"
PIPECAT_REQUIREMENT = f"pipecat-ai[websocket,silero]=={PIPECAT_VERSION}"
APP = Path(__file__).with_name("_pipecat_app.py")
INPUT_RATE = 16_000
FRAME = 320  # 20 ms of input
LEAD_S = 0.4  # background noise before each sentence
SETTLE_S = 0.5  # quiet after a reply has played out before the next turn starts
REPLY_LIMIT_S = 10.0  # a turn with no reply by then counts as unanswered
REPLY_VOICES = 8  # presence's scripted engine speaks synth_voice(seed=turn % 8)
SYSTEMS = ("presence", "pipecat")


# ----------------------------------------------------------------------------- the Pipecat environment


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


# ----------------------------------------------------------------------------- the two wires


class Wire(Protocol):
    """What the turn driver needs of a connection: send input audio, see reply audio arrive."""

    async def send(self, samples: Float32) -> None: ...

    def arrivals(self) -> list[tuple[float, int]]:
        """(monotonic arrival time, reply samples) of every reply audio message so far."""
        ...

    def turn_ends(self) -> list[int]:
        """Per answered turn, the input sample count at which the server ended the turn."""
        ...

    def sent_time_of(self, input_sample: int) -> float | None:
        """When the frame holding ``input_sample`` was sent."""
        ...

    async def close(self) -> None: ...


class PresenceWire:
    def __init__(self, client: PresenceClient) -> None:
        self.client = client

    @classmethod
    async def open(cls, port: int) -> PresenceWire:
        client = PresenceClient(f"ws://127.0.0.1:{port}/v1/session")
        await client.connect()
        return cls(client)

    async def send(self, samples: Float32) -> None:
        await self.client.send_audio(samples)

    def arrivals(self) -> list[tuple[float, int]]:
        return [(at, len(frame.data) // 2) for at, frame in self.client.received.audio if frame.data]

    def turn_ends(self) -> list[int]:
        metrics = self.client.received.events_of("metrics")
        return [int(body["turn_confirmed_sample"]) for body in metrics if body.get("turn_confirmed_sample") is not None]

    def sent_time_of(self, input_sample: int) -> float | None:
        return self.client.sent_time_of(input_sample)

    async def close(self) -> None:
        await self.client.close()


class PipecatWire:
    """Raw PCM both ways (s16le; 16 kHz in, 24 kHz out), as ``_pipecat_app`` serializes it."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._arrivals: list[tuple[float, int]] = []
        self._turn_ends: list[int] = []
        self._sent = 0
        self._sent_at: list[tuple[int, float]] = []  # (input samples after the frame, send time)
        self._reader = asyncio.create_task(self._read(), name="pipecat-wire-reader")

    @classmethod
    async def open(cls, port: int) -> PipecatWire:
        return cls(await websockets.connect(f"ws://127.0.0.1:{port}", open_timeout=10, compression=None))

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in self.ws:
                if isinstance(message, bytes) and message:
                    self._arrivals.append((time.monotonic(), len(message) // 2))
                elif isinstance(message, str):
                    note = json.loads(message)
                    if note.get("type") == "turn_end":
                        self._turn_ends.append(int(note["input_samples"]))

    async def send(self, samples: Float32) -> None:
        await self.ws.send(float_to_s16le(samples))
        self._sent += len(samples)
        self._sent_at.append((self._sent, time.monotonic()))

    def arrivals(self) -> list[tuple[float, int]]:
        return list(self._arrivals)

    def turn_ends(self) -> list[int]:
        return list(self._turn_ends)

    def sent_time_of(self, input_sample: int) -> float | None:
        index = bisect.bisect_right(self._sent_at, input_sample, key=lambda item: item[0])
        return self._sent_at[index][1] if index < len(self._sent_at) else None

    async def close(self) -> None:
        await self.ws.close()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self._reader, 5)


# ----------------------------------------------------------------------------- one turn


@dataclass(frozen=True, slots=True)
class TurnAudio:
    """A sentence after a little of its speaker's background noise; it ends where speech ends."""

    speech: Float32
    noise_rms: float


@dataclass(slots=True)
class TurnResult:
    answered: bool
    cut_in: bool  # reply audio arrived before the user had finished speaking
    first_audio_ms: float | None  # last speech frame sent → first reply byte received
    gaps_ms: list[float] = field(default_factory=list)  # between reply audio messages
    lateness_ms: float | None = None  # worst chunk lateness against playout from the first byte
    chunk_ms: float | None = None  # median reply audio message duration
    endpoint_ms: float | None = None  # last speech frame sent → frame that ended the turn sent
    decided_to_audio_ms: float | None = None  # frame that ended the turn sent → first reply byte


def make_turn(utterance: Utterance, rng: np.random.Generator) -> TurnAudio:
    lead = (utterance.noise_rms * rng.standard_normal(int(LEAD_S * INPUT_RATE))).astype(np.float32)
    audio = np.concatenate([lead, utterance.audio]).astype(np.float32)
    return TurnAudio(audio, utterance.noise_rms)


def reply_stats(arrivals: Sequence[tuple[float, int]]) -> tuple[list[float], float, float]:
    """Gaps between messages (ms), worst lateness against real-time playout (ms), median chunk (ms)."""
    times = np.array([at for at, _ in arrivals])
    sizes = np.array([n for _, n in arrivals], dtype=np.float64)
    due = times[0] + np.concatenate([[0.0], np.cumsum(sizes)[:-1]]) / REPLY_RATE
    gaps = list(np.diff(times) * 1000)
    return gaps, float(np.max(times - due) * 1000), float(np.median(sizes) / REPLY_RATE * 1000)


class Microphone:
    """A live microphone on one connection: 20 ms frames in real time, for the whole run.

    It sends what it is told to say, and background noise the rest of the time, so each server
    always hears a continuous stream — also while the benchmark is serving the other one
    (both frameworks keep time from the audio they receive: a silent gap is not a pause to them).
    """

    def __init__(self, wire: Wire, noise_rms: float, rng: np.random.Generator) -> None:
        self.wire = wire
        self.noise_rms = noise_rms
        self.rng = rng
        self._queue: list[tuple[Float32, asyncio.Future[float]]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="microphone")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def say(self, audio: Float32, noise_rms: float) -> asyncio.Future[float]:
        """Queue ``audio``; the future gives the monotonic time its last frame was sent."""
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._queue.append((audio, done))
        self.noise_rms = noise_rms
        return done

    def _noise(self, n: int) -> Float32:
        return (self.noise_rms * self.rng.standard_normal(n)).astype(np.float32)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = 0
        current: tuple[Float32, asyncio.Future[float]] | None = None
        offset = 0
        while True:
            if current is None and self._queue:
                current, offset = self._queue.pop(0), 0
            if current is None:
                chunk = self._noise(FRAME)
            else:
                chunk = current[0][offset : offset + FRAME]
                if len(chunk) < FRAME:
                    chunk = np.concatenate([chunk, self._noise(FRAME - len(chunk))]).astype(np.float32)
                offset += FRAME
            delay = start + sent * FRAME / INPUT_RATE - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.wire.send(chunk)
            sent += 1
            if current is not None and offset >= len(current[0]):
                current[1].set_result(time.monotonic())
                current = None


async def run_turn(mic: Microphone, turn: TurnAudio, reply_s: float) -> TurnResult:
    """Say one sentence; wait until its reply has played out (or never came)."""
    wire = mic.wire
    seen = len(wire.arrivals())
    ends_seen = len(wire.turn_ends())
    end_sent = await mic.say(turn.speech, turn.noise_rms)
    while True:
        await asyncio.sleep(FRAME / INPUT_RATE)
        now = time.monotonic()
        reply = wire.arrivals()[seen:]
        after = [a for a in reply if a[0] >= end_sent]
        if after and now >= after[0][0] + reply_s + SETTLE_S and now >= reply[-1][0] + SETTLE_S:
            break
        if now - end_sent > REPLY_LIMIT_S:
            break
    cut_in = bool(reply) and reply[0][0] < end_sent
    if not after:
        return TurnResult(False, cut_in, None)
    first_ms = (after[0][0] - end_sent) * 1000
    gaps, lateness, chunk_ms = reply_stats(after)
    result = TurnResult(True, cut_in, first_ms, gaps, lateness, chunk_ms)
    ends = wire.turn_ends()[ends_seen:]
    # The turn-ending window's last sample is ends[-1] - 1; its frame's send time is the decision.
    decided = wire.sent_time_of(ends[-1] - 1) if ends else None
    if decided is not None:
        result.endpoint_ms = (decided - end_sent) * 1000
        result.decided_to_audio_ms = (after[0][0] - decided) * 1000
    return result


# ----------------------------------------------------------------------------- a comparison


@dataclass(frozen=True, slots=True)
class Setup:
    name: str
    presence_flags: tuple[str, ...]
    pipecat_flags: tuple[str, ...]
    subtract_ms: float  # endpointing wait + think time, taken off to leave overhead


def setups(think_ms: int, silence_ms: int, reply_ms: int, lipsync: str | None = None) -> list[Setup]:
    scripted: tuple[str, ...] = ("--engine", "scripted", "--vad", "silero", "--scripted-reply-ms", str(reply_ms))
    if lipsync is not None:
        scripted += ("--lipsync", lipsync)
    return [
        Setup(
            "defaults",
            (*scripted, "--scripted-think-ms", str(think_ms)),
            ("--turn", "smart", "--think-ms", str(think_ms)),
            0.0,
        ),
        Setup(
            "equalised",
            (*scripted, "--scripted-think-ms", "0", "--confirm-rule", "fixed", "--confirm-ms", str(silence_ms)),
            ("--turn", "silence", "--stop-secs", str(silence_ms / 1000), "--think-ms", "0"),
            float(silence_ms),
        ),
    ]


def pick_turns(utterances: dict[str, list[Utterance]], count: int, seed: int) -> list[TurnAudio]:
    """``count`` sentences, round-robin over speakers so voices vary from turn to turn."""
    rng = np.random.default_rng(seed)
    speakers = sorted(utterances)
    chosen: list[TurnAudio] = []
    for index in range(count):
        pool = utterances[speakers[index % len(speakers)]]
        chosen.append(make_turn(pool[(index // len(speakers)) % len(pool)], rng))
    return chosen


async def alternate(
    ports: dict[str, int], warm_up: TurnAudio, turns: list[TurnAudio], reply_s: float
) -> dict[str, list[TurnResult]]:
    """Every turn on both systems, the order flipping each turn; one connection per system.

    Each system first answers one warm-up turn (model sessions, caches), which is not counted.
    """
    wires: dict[str, Wire] = {
        "presence": await PresenceWire.open(ports["presence"]),
        "pipecat": await PipecatWire.open(ports["pipecat"]),
    }
    mics = {name: Microphone(wire, warm_up.noise_rms, np.random.default_rng(7)) for name, wire in wires.items()}
    for mic in mics.values():
        mic.start()
    results: dict[str, list[TurnResult]] = {name: [] for name in SYSTEMS}
    try:
        for name in SYSTEMS:
            await run_turn(mics[name], warm_up, reply_s)
        for index, turn in enumerate(turns):
            order = SYSTEMS if index % 2 == 0 else SYSTEMS[::-1]
            for name in order:
                results[name].append(await run_turn(mics[name], turn, reply_s))
    finally:
        for mic in mics.values():
            await mic.stop()
        for wire in wires.values():
            await wire.close()
    return results


def summarise(setup: Setup, results: dict[str, list[TurnResult]]) -> dict[str, Any]:
    systems: dict[str, Any] = {}
    for name, turns in results.items():
        first = [t.first_audio_ms for t in turns if t.first_audio_ms is not None]
        systems[name] = {
            "turns": len(turns),
            "answered": sum(t.answered for t in turns),
            "cut_ins": sum(t.cut_in for t in turns),
            "first_audio_ms": summary(first),
            "overhead_ms": summary([f - setup.subtract_ms for f in first]),
            "endpoint_ms": summary([t.endpoint_ms for t in turns if t.endpoint_ms is not None]),
            "decided_to_audio_ms": summary([t.decided_to_audio_ms for t in turns if t.decided_to_audio_ms is not None]),
            "reply_gap_ms": summary([g for t in turns for g in t.gaps_ms]),
            "reply_lateness_ms": summary([t.lateness_ms for t in turns if t.lateness_ms is not None]),
            "reply_chunk_ms": summary([t.chunk_ms for t in turns if t.chunk_ms is not None]),
        }
    measure = "first_audio_ms" if setup.subtract_ms == 0 else "overhead_ms"
    return {
        "setup": setup.name,
        "presence_flags": list(setup.presence_flags),
        "pipecat_flags": list(setup.pipecat_flags),
        "subtracted_ms": setup.subtract_ms,
        "ratio_measure": measure,
        "ratio_presence_over_pipecat": ratios(systems, measure),
        "decided_to_audio_ratio_presence_over_pipecat": ratios(systems, "decided_to_audio_ms"),
        "systems": systems,
    }


def ratios(systems: dict[str, Any], measure: str) -> dict[str, float | None]:
    """presence / Pipecat of ``measure`` at each percentile (None when either is missing or 0)."""
    out: dict[str, float | None] = {}
    for pct in ("p50", "p95", "p99"):
        mine, theirs = systems["presence"][measure][pct], systems["pipecat"][measure][pct]
        out[pct] = round(mine / theirs, 3) if mine is not None and theirs else None
    return out


# ----------------------------------------------------------------------------- report


def render(results: dict[str, Any], command: str) -> str:
    defaults, equalised = results["comparisons"]
    columns = [("system", "system"), ("answered", "answered"), ("cut_ins", "cut-ins"), ("n", "n")]
    columns += [("p50", "p50"), ("p95", "p95"), ("p99", "p99")]

    def rows(comparison: dict[str, Any], measure: str) -> list[dict[str, Any]]:
        out = []
        for name in SYSTEMS:
            system = comparison["systems"][name]
            out.append(
                {"system": name, "answered": f"{system['answered']}/{system['turns']}", **system[measure]}
                | {"cut_ins": system["cut_ins"]}
            )
        return out

    jitter = []
    for comparison in results["comparisons"]:
        for name in SYSTEMS:
            system = comparison["systems"][name]
            jitter.append(
                {
                    "what": f"{name}, {comparison['setup']}",
                    "chunk": system["reply_chunk_ms"]["p50"],
                    "gap50": system["reply_gap_ms"]["p50"],
                    "gap99": system["reply_gap_ms"]["p99"],
                    "late50": system["reply_lateness_ms"]["p50"],
                    "late99": system["reply_lateness_ms"]["p99"],
                }
            )
    a = defaults["ratio_presence_over_pipecat"]
    b = equalised["ratio_presence_over_pipecat"]
    c = equalised["decided_to_audio_ratio_presence_over_pipecat"]

    def lag(system: dict[str, Any]) -> dict[str, float | None]:
        endpoint = system["endpoint_ms"]
        return {
            pct: None if endpoint[pct] is None else round(endpoint[pct] - results["silence_ms"], 1)
            for pct in ("p50", "p95")
        }

    machine = results["machine"]
    return "\n\n".join(
        [
            "# presence vs Pipecat, same scripted bot, same run",
            f"**Time to first audio, each at its defaults: presence / Pipecat = {a['p50']} (p50), "
            f"{a['p95']} (p95).** **Overhead with endpointing equalised: presence / Pipecat = "
            f"{b['p50']} (p50), {b['p95']} (p95); of which, from the turn-ending frame to first audio: "
            f"{c['p50']} (p50), {c['p95']} (p95).** Below 1 means presence is faster.",
            f"Machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}; "
            f"pipecat-ai {results['pipecat_version']}; revision {results['revision']}; presence lip-sync: "
            f"{results['presence_lipsync']}. Command: `{command}`.",
            "Both serve the same bot on loopback: real speech in (TIMIT sentences; each connection fed "
            "like a live microphone, 20 ms frames in real time, background noise between sentences; one "
            "warm-up turn each, not counted), a scripted reply out (the same "
            f"{results['reply_ms']} ms of presence's synthetic voice at 24 kHz, 20 ms chunks, as fast as the "
            "pipeline takes them). One Python client drives both (presence's protocol; raw PCM for Pipecat) "
            "and alternates them turn by turn. Times run from sending the 20 ms frame that holds the last "
            "speech sample (from the TIMIT alignment) to receiving the first reply audio byte.",
            f"## (a) Time to first audio at each framework's defaults (ms), think time {results['think_ms']} ms",
            "presence: Silero VAD, 800 ms of silence confirms the turn; its engine starts the reply "
            "speculatively after 96 ms of silence, so the think time overlaps the wait. Pipecat: Silero VAD "
            "stopping after 0.2 s, then Smart Turn v3 (local ONNX) decides; the reply starts when the turn "
            "ends. No transcription exists, so Pipecat's stop strategy does not wait for one.",
            table(rows(defaults, "first_audio_ms"), columns),
            f"## (b) Overhead with endpointing equalised (ms): first audio − {results['silence_ms']} ms",
            f"Both: Silero VAD, turn ends after {results['silence_ms']} ms of silence, nothing after it; "
            "think time 0. What is left is each framework's VAD lag past the true end of speech, its "
            "pipeline, its output path and the loopback.",
            table(rows(equalised, "overhead_ms"), columns),
            "## (c) Where (b) goes (ms)",
            "Each server says which input frame ended the turn (presence: its turn metrics; Pipecat: a "
            "note the bot sends after each reply, counting input samples that entered the pipeline, "
            "so ±1 frame). *Endpoint lag*: that frame's send time − last speech frame's − "
            f"{results['silence_ms']} ms, i.e. how late each VAD saw the speech end. *Decision → first "
            "audio*: that frame sent → first reply byte received: the framework's own path and the "
            f"loopback. presence / Pipecat for it: {c['p50']} (p50), {c['p95']} (p95).",
            table(
                [
                    {
                        "system": name,
                        **{f"lag{k}": v for k, v in lag(equalised["systems"][name]).items()},
                        **{f"dec{k}": v for k, v in equalised["systems"][name]["decided_to_audio_ms"].items()},
                    }
                    for name in SYSTEMS
                ],
                [
                    ("system", "system"),
                    ("lagp50", "endpoint lag p50"),
                    ("lagp95", "lag p95"),
                    ("decn", "n"),
                    ("decp50", "decision → audio p50"),
                    ("decp95", "p95"),
                    ("decp99", "p99"),
                ],
            ),
            "## Reply audio arrival (ms)",
            "Chunk: median message length. Gap: time between messages. Late: per reply, the worst "
            "lateness of a chunk against playing the reply from its first byte — the jitter buffer a "
            "client needs to play it without a gap (≤ 0: never late).",
            table(
                jitter,
                [
                    ("what", "system, setup"),
                    ("chunk", "chunk"),
                    ("gap50", "gap p50"),
                    ("gap99", "gap p99"),
                    ("late50", "late p50"),
                    ("late99", "late p99"),
                ],
            ),
            "## Caveats",
            "- The two Silero VADs are tuned differently (Pipecat: confidence 0.7 plus a volume floor; "
            "presence: its own thresholds), so (b) includes each one's detection lag, not only plumbing.\n"
            "- Pipecat's output transport sends 40 ms chunks paced at twice real time; presence sends 20 ms "
            "frames up to 1 s ahead of real time. Both are defaults.\n"
            "- Pipecat's wire here is bare PCM with no framing or events, the lightest it can be; "
            "presence's frames carry headers, timestamps, animation and events.\n"
            "- A cut-in is a turn whose reply began before the user had finished the sentence "
            "(an endpoint inside a pause); its time to first audio counts the first byte after the end.\n"
            "- presence also animates every reply (lip-sync, its default for the scripted engine: the audio "
            "model) and sends the animation; Pipecat animates nothing. `--lipsync energy` shows what that "
            "work costs presence's first audio.\n"
            "- Shared, noisy machine: read the ratios, measured in one run, more than the absolute values.",
        ]
    )


def plot(results: dict[str, Any], samples: dict[str, dict[str, list[float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4), dpi=120)
    titles = {"defaults": "(a) first audio, defaults", "equalised": "(b) overhead, equalised"}
    for ax, comparison in zip(axes, results["comparisons"], strict=True):
        name = comparison["setup"]
        data = [samples[name][system] for system in SYSTEMS]
        ax.boxplot(data, whis=(1, 99))
        ax.set_xticks([1, 2], list(SYSTEMS))
        for x, values in enumerate(data, start=1):
            ax.plot(np.full(len(values), x) + np.linspace(-0.08, 0.08, len(values)), values, ".", alpha=0.5)
        ax.set_title(titles[name])
        ax.set_ylabel("ms")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="presence bench pipecat", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="CI-sized run (2 turns per comparison)")
    parser.add_argument("--turns", type=int, default=24, help="turns per system per comparison")
    parser.add_argument("--think-ms", type=int, default=200, help="scripted think time in comparison (a)")
    parser.add_argument("--silence-ms", type=int, default=320, help="equalised end-of-turn silence in (b)")
    parser.add_argument("--reply-ms", type=int, default=1200, help="length of the scripted reply")
    parser.add_argument("--lipsync", help="presence's lip-sync (default: its own default; Pipecat animates nothing)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="TIMIT sample folder")
    parser.add_argument("--json", help="write results as JSON here")
    parser.add_argument("--md", default="docs/benchmarks/pipecat.md", help="Markdown report path ('' for none)")
    parser.add_argument("--plot", type=Path, help="write the distributions PNG here")
    args = parser.parse_args(argv)
    turns = 2 if args.quick else args.turns
    command = f"presence bench pipecat {'--quick' if args.quick else f'--turns {turns}'}"
    if args.lipsync:
        command += f" --lipsync {args.lipsync}"
    python = ensure_pipecat_env(pipecat_env_dir())
    warm_up, *sentences = pick_turns(load_speakers(args.data), turns + 1, seed=1)
    comparisons = []
    samples: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="presence-pipecat-") as folder:
        write_replies(Path(folder), args.reply_ms)
        for setup in setups(args.think_ms, args.silence_ms, args.reply_ms, args.lipsync):
            print(f"pipecat: comparison '{setup.name}', {turns} turns each, alternating", flush=True)
            with (
                presence_server(*setup.presence_flags) as presence_port,
                pipecat_server(python, Path(folder), *setup.pipecat_flags) as pipecat_port,
            ):
                ports = {"presence": presence_port, "pipecat": pipecat_port}
                results = asyncio.run(alternate(ports, warm_up, sentences, args.reply_ms / 1000))
            comparisons.append(summarise(setup, results))
            samples[setup.name] = {
                name: [t.first_audio_ms - setup.subtract_ms for t in results[name] if t.first_audio_ms is not None]
                for name in SYSTEMS
            }
    report: dict[str, Any] = {
        "suite": "pipecat",
        "pipecat_version": PIPECAT_VERSION,
        "turns": turns,
        "think_ms": args.think_ms,
        "silence_ms": args.silence_ms,
        "reply_ms": args.reply_ms,
        "presence_lipsync": args.lipsync or "default",
        "comparisons": comparisons,
    }
    markdown = render({**report, "machine": machine(), "revision": git_revision()}, command)
    md_path = Path(args.md) if args.md and not args.quick else None
    write_results(report, markdown, args.json, md_path)
    if args.plot:
        plot(report, samples, args.plot)
    return 0
