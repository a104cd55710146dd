"""What the cloud speech engines share: secrets kept out of logs, backoff, the pre-roll, and
telling a refused configuration from a network failure.

API keys live only in the SDK clients. Every message a cloud engine reports is scrubbed with
``scrub``, and a logging filter blanks keys out of the client libraries' own output (their
DEBUG logs print request headers). Reconnection waits follow ``BACKOFF_S``. ``PreRoll`` keeps
the last fraction of a second before the VAD's speech onset, so the model hears the first
syllable without presence ever uploading the silence between turns.

A service that refuses the configuration (an unknown model, a refused key, a setup it
rejects) is not retried: retrying cannot help, and backing off forever would hide the cause
behind ``engine_unavailable`` on every turn. The session fails at once with one
``engine_misconfigured`` error event that names the model and quotes the service.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import itertools
import json
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, Final

import numpy as np

from presence.engines import EngineUnavailable
from presence.engines.base import EngineError, EngineOutput, EngineSession, ReplyEnd, until_closed
from presence.media import INPUT_SAMPLE_RATE, Samples

PRE_ROLL_S: Final = 0.3  # audio kept from before the VAD's speech onset
BACKOFF_S: Final = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
MISCONFIGURED: Final = "engine_misconfigured"  # the error code of a refused configuration
#: HTTP statuses of a refused WebSocket handshake that retrying cannot fix.
REFUSED_STATUSES: Final = frozenset({400, 401, 403, 404})
#: Loggers of the libraries that carry keys, whose debug output includes request headers.
CLIENT_LOGGERS: Final = ("websockets.client", "openai", "google_genai", "httpx", "httpcore")


class SecretFilter(logging.Filter):
    """Blanks secrets out of every record a logger emits (even a library's DEBUG headers)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            record.msg, record.args = self.scrub(message), ()
        return True


SECRETS: Final = SecretFilter()
for _name in CLIENT_LOGGERS:
    logging.getLogger(_name).addFilter(SECRETS)


def keep_secret(secret: str) -> None:
    """From now on ``secret`` is blanked out of the client libraries' logs and of ``scrub``."""
    if secret:
        SECRETS.secrets.add(secret)


def scrub(text: str) -> str:
    """``text`` with every known secret replaced by ``***``."""
    return SECRETS.scrub(text)


def backoff_s(attempt: int) -> float:
    """The wait before reconnect attempt ``attempt`` (0-based): doubling, capped at 8 s."""
    return BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]


def describe(exc: BaseException) -> str:
    """A short, secret-free description of a failure, fit for a log line or an error event."""
    return scrub(f"{type(exc).__name__}: {exc}")[:300]


class EngineMisconfigured(EngineUnavailable):
    """The service refused the configuration (model, key or setup); the message quotes it."""


def version_tuple(version: str) -> tuple[int, ...]:
    """``"1.107.2"`` → ``(1, 107, 2)``; a pre-release suffix is ignored (``"2.0.0rc1"`` → ``(2, 0, 0)``)."""
    parts = []
    for part in version.split("."):
        digits = "".join(itertools.takewhile(str.isdigit, part))
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def require_sdk(package: str, minimum: tuple[int, ...], extra: str) -> None:
    """An SDK older than the engine needs fails later with ``AttributeError``, which would read
    as a connect failure and be retried forever: refuse it up front, saying what to install."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version(package)
    except PackageNotFoundError:
        raise EngineUnavailable(f"the {extra} engine needs {package!r}: pip install 'presence[{extra}]'") from None
    if version_tuple(installed) < minimum:
        wanted = ".".join(map(str, minimum))
        raise EngineUnavailable(
            f"the {extra} engine needs {package}>={wanted} (installed: {installed}): pip install -U 'presence[{extra}]'"
        )


def refused_handshake(exc: BaseException) -> str | None:
    """The service's words when it refused the WebSocket handshake for good (bad key, no such
    model or path), or None for anything a retry may cure (overload, network)."""
    from websockets.exceptions import InvalidStatus

    if not isinstance(exc, InvalidStatus) or exc.response.status_code not in REFUSED_STATUSES:
        return None
    body = exc.response.body.decode("utf-8", "replace").strip() if exc.response.body else ""
    try:
        message = str(json.loads(body)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = body
    return scrub(f"HTTP {exc.response.status_code}: {message}" if message else f"HTTP {exc.response.status_code}")


def purge_turn(queue: asyncio.Queue[EngineOutput | None], turn_id: int) -> None:
    """Drop the queued outputs of ``turn_id`` (an interrupted reply); keep the rest in order."""
    kept = []
    while not queue.empty():
        item = queue.get_nowait()
        if item is None or item.turn_id != turn_id:
            kept.append(item)
    for item in kept:
        queue.put_nowait(item)


class PreRoll:
    """The last ``PRE_ROLL_S`` of 16 kHz input, handed over when the user starts speaking."""

    def __init__(self, seconds: float = PRE_ROLL_S) -> None:
        self.limit = int(seconds * INPUT_SAMPLE_RATE)
        self._blocks: deque[Samples] = deque()
        self._samples = 0

    def push(self, samples: Samples) -> None:
        self._blocks.append(samples)
        self._samples += len(samples)
        while self._blocks and self._samples - len(self._blocks[0]) >= self.limit:
            self._samples -= len(self._blocks.popleft())

    def take(self) -> Samples:
        """Everything held, oldest first; the buffer is empty afterwards."""
        held = np.concatenate(list(self._blocks)) if self._blocks else np.zeros(0, np.float32)
        self._blocks.clear()
        self._samples = 0
        return held.astype(np.float32, copy=False)


class CloudSession(EngineSession):
    """The lifecycle every cloud engine session shares: a background connection task, one
    bounded output queue, and turns that fail with an error event instead of hanging."""

    task_name = "cloud-engine"

    def __init__(self, registry: list[Any]) -> None:
        # The engine's list of open sessions: joined here, left on close, so an engine keeps
        # nothing of the sessions that ended.
        self._registry = registry
        registry.append(self)
        self._outputs: asyncio.Queue[EngineOutput | None] = asyncio.Queue(maxsize=1024)
        self._connected = asyncio.Event()
        self._closed = False
        self._runner: asyncio.Task[None] | None = None
        self._dropped: set[int] = set()  # turns interrupted: anything more for them is stale
        self.connect_failures = 0
        self.config_error: str | None = None  # set when the service refused the configuration

    @abc.abstractmethod
    async def _run(self) -> None:
        """Connect, receive, reconnect with backoff, until the session closes."""

    async def _disconnect(self) -> None:
        """Close the service connection, if the subclass holds it outside ``_run``."""
        self._connected.clear()

    def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name=self.task_name)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(ValueError):
            self._registry.remove(self)
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        await self._disconnect()
        with contextlib.suppress(asyncio.QueueFull):
            self._outputs.put_nowait(None)

    def outputs(self) -> AsyncIterator[EngineOutput]:
        return until_closed(self._outputs)

    def _forget(self, turn_id: int) -> None:
        """The user barged in on ``turn_id``: nothing more of it may surface, queued or not."""
        self._dropped.add(turn_id)
        purge_turn(self._outputs, turn_id)

    async def _misconfigured(self, message: str) -> None:
        """The service refused the configuration: fail the session once, with its words; no retry."""
        self.config_error = scrub(message)
        logging.getLogger(type(self).__module__).error("%s", self.config_error)
        await self._emit(EngineError(self.config_error, None, fatal=True, code=MISCONFIGURED))

    async def _fail_unreachable(self, turn_id: int, service: str) -> None:
        """A turn confirmed while there is no connection ends at once, saying why."""
        if self.config_error is not None:
            await self._fail_turn(turn_id, MISCONFIGURED, self.config_error)
        else:
            await self._fail_turn(turn_id, "engine_unavailable", f"{service} is not reachable")

    async def _fail_turn(self, turn_id: int, code: str, message: str) -> None:
        await self._emit(EngineError(scrub(message), turn_id, code=code))
        await self._emit(ReplyEnd(turn_id, "error"))

    async def _emit(self, item: EngineOutput) -> None:
        if not self._closed:
            await self._outputs.put(item)
