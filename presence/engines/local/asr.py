"""Streaming speech recognition with pocketsphinx (the wheel ships the en-us model).

Audio is decoded as it arrives, in one worker thread per session, so the final transcript
costs only the end of the utterance (about 5 ms), never a re-decode. The event loop only
enqueues audio and awaits results.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from presence.audio.pcm import Float32, float_to_s16le
from presence.engines.base import INPUT_SAMPLE_RATE

log = logging.getLogger(__name__)

MAX_UTTERANCE_S: Final = 30.0  # audio past this in one turn is not recognised (documented limit)
_STOP: Final = object()


class RecognizerError(RuntimeError):
    """The decoder could not be created or failed mid-utterance."""


@dataclass(frozen=True, slots=True)
class Hypothesis:
    text: str
    final: bool
    audio_s: float  # how much audio the utterance held


def _make_decoder() -> object:
    try:
        from pocketsphinx import Decoder
    except ImportError as exc:
        raise RecognizerError("speech recognition needs pocketsphinx: pip install 'presence[local]'") from exc
    # No second pass: the final hypothesis is the first pass's, ready the moment audio ends.
    return Decoder(samprate=INPUT_SAMPLE_RATE, bestpath=False, fwdflat=False, loglevel="FATAL")


class StreamingRecognizer:
    """One utterance at a time: ``feed`` audio, ``partial()`` while speaking, ``final()`` at the end.

    ``on_partial`` is called from the worker thread with each changed partial hypothesis.
    """

    def __init__(self, on_partial: Callable[[str], None] | None = None, partial_every_s: float = 0.3) -> None:
        self._decoder = _make_decoder()
        self._on_partial = on_partial
        self._partial_every = int(partial_every_s * INPUT_SAMPLE_RATE)
        self._jobs: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._in_utterance = False
        self._samples = 0
        self._since_partial = 0
        self._last_partial = ""
        self.cpu_s = 0.0  # decoder CPU time so far (worker thread), for benchmarks
        self.decoded_s = 0.0  # audio decoded so far
        self._thread = threading.Thread(target=self._work, name="presence-asr", daemon=True)
        self._thread.start()

    # -- called from the event loop ------------------------------------------------------

    def feed(self, samples: Float32) -> None:
        self._jobs.put(("audio", samples))

    async def partial(self) -> Hypothesis:
        return await self._ask("partial")

    async def final(self) -> Hypothesis:
        """End the utterance and return its transcript; the next ``feed`` starts a new one."""
        return await self._ask("final")

    async def discard(self) -> None:
        """Forget the current utterance (e.g. audio heard while the agent spoke)."""
        await self._ask("discard")

    def close(self) -> None:
        self._jobs.put(_STOP)

    async def _ask(self, what: str) -> Hypothesis:
        future: Future[Hypothesis] = Future()
        self._jobs.put((what, future))
        return await asyncio.wrap_future(future)

    # -- the worker thread ---------------------------------------------------------------

    def _work(self) -> None:
        decoder = self._decoder
        while True:
            job = self._jobs.get()
            if job is _STOP:
                if self._in_utterance:
                    decoder.end_utt()  # type: ignore[attr-defined]
                return
            kind: str
            payload: Any
            kind, payload = job  # type: ignore[misc]
            if kind == "audio":
                started = time.thread_time()
                try:
                    self._decode(payload)
                except Exception:
                    # Reported to whoever asks for this utterance's transcript: it comes back empty.
                    log.exception("pocketsphinx failed while decoding")
                    self._in_utterance = False
                self.cpu_s += time.thread_time() - started
                self.decoded_s += len(payload) / INPUT_SAMPLE_RATE
                continue
            future: Future[Hypothesis] = payload
            try:
                future.set_result(self._answer(kind))
            except Exception as exc:  # any decoder failure ends up on the awaiting side
                self._in_utterance = False
                future.set_exception(RecognizerError(f"speech recognition failed: {exc}"))

    def _decode(self, samples: Float32) -> None:
        if self._samples >= MAX_UTTERANCE_S * INPUT_SAMPLE_RATE:
            return
        if not self._in_utterance:
            self._decoder.start_utt()  # type: ignore[attr-defined]
            self._in_utterance = True
        self._decoder.process_raw(float_to_s16le(np.asarray(samples)), False, False)  # type: ignore[attr-defined]
        self._samples += len(samples)
        self._since_partial += len(samples)
        if self._on_partial is not None and self._since_partial >= self._partial_every:
            self._since_partial = 0
            text = self._hyp()
            if text and text != self._last_partial:
                self._last_partial = text
                self._on_partial(text)

    def _hyp(self) -> str:
        hyp = self._decoder.hyp()  # type: ignore[attr-defined]
        return str(hyp.hypstr).strip() if hyp is not None else ""

    def _answer(self, kind: str) -> Hypothesis:
        audio_s = self._samples / INPUT_SAMPLE_RATE
        if kind == "partial":
            return Hypothesis(self._hyp() if self._in_utterance else "", False, audio_s)
        text = ""
        if self._in_utterance:
            # The search can end without reaching a final state (a cut-off last word) and then
            # has no hypothesis at all; the first pass's best path is still the right answer.
            running = self._hyp()
            self._decoder.end_utt()  # type: ignore[attr-defined]
            text = self._hyp() or running
            self._in_utterance = False
        self._samples = self._since_partial = 0
        self._last_partial = ""
        return Hypothesis(text if kind == "final" else "", kind == "final", audio_s)
