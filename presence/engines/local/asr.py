"""Streaming speech recognition with pocketsphinx (the wheel ships the en-us model).

Audio is decoded as it arrives, so the final transcript costs only the end of the utterance
(about 5 ms), never a re-decode. The event loop only enqueues audio and awaits results.

What is shared and what is per session matters for memory: a pocketsphinx decoder holds its
own copy of the acoustic and language models (~90 MB, 0.3-0.4 s to load), and glibc keeps
freed model memory in the allocating thread's arena. One decoder and one thread per session
made every session ever opened cost ~35 MB that never came back. So all sessions share one
worker thread (:class:`AsrWorker`), and decoders are lent from a bounded pool only while an
utterance is being heard: an open session that is not hearing speech holds nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final, Protocol

import numpy as np

from presence.audio.pcm import Float32, float_to_s16le
from presence.media import INPUT_SAMPLE_RATE

log = logging.getLogger(__name__)

MAX_UTTERANCE_S: Final = 30.0  # audio past this in one turn is not recognised (documented limit)
IDLE_DECODERS: Final = 1  # decoders kept loaded between utterances (each holds ~90 MB)


class RecognizerError(RuntimeError):
    """The decoder could not be created or failed mid-utterance."""


@dataclass(frozen=True, slots=True)
class Hypothesis:
    text: str
    final: bool
    audio_s: float  # how much audio the utterance held


class Recognizer(Protocol):
    """One session's speech recognition (pocketsphinx or Whisper), driven from the event loop."""

    cpu_s: float
    decoded_s: float

    def feed(self, samples: Float32) -> None: ...
    async def partial(self) -> Hypothesis: ...
    async def final(self) -> Hypothesis: ...
    def resumed(self) -> None: ...
    async def discard(self) -> None: ...
    def close(self) -> None: ...


class SpeechRecognition(Protocol):
    """What the engine shares between sessions: a model, its thread(s)."""

    name: str

    def load(self) -> None: ...
    def stop(self) -> None: ...
    def open(self, on_partial: Callable[[str], None] | None = None) -> Recognizer: ...


def _make_decoder() -> Any:
    try:
        from pocketsphinx import Decoder
    except ImportError as exc:
        raise RecognizerError("speech recognition needs pocketsphinx: pip install 'presence[local]'") from exc
    # No second pass: the final hypothesis is the first pass's, ready the moment audio ends.
    return Decoder(samprate=INPUT_SAMPLE_RATE, bestpath=False, fwdflat=False, loglevel="FATAL")


def _trim_heap() -> None:
    """Give freed memory back to the OS (glibc keeps it in the arena otherwise)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(name).malloc_trim(0)


class DecoderPool:
    """Loaded decoders, lent to one utterance at a time; at most ``idle_max`` kept when idle.

    Used from the worker thread only.
    """

    def __init__(self, idle_max: int = IDLE_DECODERS, make: Callable[[], Any] = _make_decoder) -> None:
        self.idle_max = idle_max
        self._make = make
        self._idle: list[Any] = []
        self.lent = 0
        self.freed = False  # a decoder was let go: trim the heap once nothing refers to it

    def acquire(self) -> Any:
        decoder = self._idle.pop() if self._idle else self._make()
        self.lent += 1
        return decoder

    def release(self, decoder: Any) -> None:
        self.lent -= 1
        if len(self._idle) < self.idle_max:
            self._idle.append(decoder)
        else:
            self.freed = True

    def clear(self) -> None:
        self._idle.clear()
        self.freed = True


class AsrWorker:
    """The one thread that runs every session's decoding, in arrival order.

    pocketsphinx decodes at ~0.1× real time, so one thread keeps up with many speakers; a
    thread per session cost memory and start-up time and bought nothing on two cores.
    """

    name = "pocketsphinx"

    def __init__(self, pool: DecoderPool | None = None) -> None:
        self.pool = pool or DecoderPool()
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="presence-asr", daemon=True)
                self._thread.start()
        self._jobs.put(job)

    def open(self, on_partial: Callable[[str], None] | None = None) -> StreamingRecognizer:
        return StreamingRecognizer(self, on_partial)

    def load(self) -> None:
        self.warm()

    def warm(self) -> None:
        """Load one decoder now (in this thread), so the first utterance does not wait for it."""
        done: Future[None] = Future()

        def job() -> None:
            self.pool.release(self.pool.acquire())
            done.set_result(None)

        self.submit(job)
        done.result()

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            thread.join()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                self.pool.clear()
                _trim_heap()
                return
            try:
                job()
            except Exception:  # a job reports its own failures; this only keeps the thread alive
                log.exception("speech recognition job failed")
            del job  # the job's frames may hold the last reference to a released decoder
            if self.pool.freed:
                self.pool.freed = False
                _trim_heap()


class StreamingRecognizer:
    """One session's utterances: ``feed`` audio, ``partial()`` while speaking, ``final()`` at the end.

    Holds no decoder between utterances. ``on_partial`` is called from the worker thread with
    each changed partial hypothesis.
    """

    def __init__(
        self,
        worker: AsrWorker | None = None,
        on_partial: Callable[[str], None] | None = None,
        partial_every_s: float = 0.3,
    ) -> None:
        self._own_worker = worker is None
        self._worker = worker or AsrWorker(DecoderPool(idle_max=0))
        self._on_partial = on_partial
        self._partial_every = int(partial_every_s * INPUT_SAMPLE_RATE)
        self._decoder: Any = None  # lent by the pool while an utterance is heard
        # This session's cepstral mean: pocketsphinx adapts it from utterance to utterance.
        self._cmn: str | None = None
        self._samples = 0
        self._since_partial = 0
        self._last_partial = ""
        self._closed = False
        self.cpu_s = 0.0  # decoder CPU time so far (worker thread), for benchmarks
        self.decoded_s = 0.0  # audio decoded so far

    # -- called from the event loop ------------------------------------------------------

    def feed(self, samples: Float32) -> None:
        if not self._closed:
            self._worker.submit(lambda: self._decode(samples))

    async def partial(self) -> Hypothesis:
        return await self._ask("partial")

    async def final(self) -> Hypothesis:
        """End the utterance and return its transcript; the next ``feed`` starts a new one."""
        return await self._ask("final")

    async def discard(self) -> None:
        """Forget the current utterance (e.g. audio heard while the agent spoke)."""
        await self._ask("discard")

    def resumed(self) -> None:
        """The user spoke again after a pause: nothing to do, decoding is continuous."""

    def close(self) -> None:
        """Give the decoder back; idempotent. Jobs already queued run first."""
        if self._closed:
            return
        self._closed = True
        self._worker.submit(self._end_utterance)
        if self._own_worker:
            threading.Thread(target=self._worker.stop, name="presence-asr-stop", daemon=True).start()

    async def _ask(self, what: str) -> Hypothesis:
        if self._closed:
            raise RecognizerError("the recognizer is closed")
        future: Future[Hypothesis] = Future()

        def job() -> None:
            try:
                future.set_result(self._answer(what))
            except Exception as exc:  # any decoder failure ends up on the awaiting side
                self._end_utterance()
                future.set_exception(RecognizerError(f"speech recognition failed: {exc}"))

        self._worker.submit(job)
        return await asyncio.wrap_future(future)

    # -- on the worker thread ------------------------------------------------------------

    def _decode(self, samples: Float32) -> None:
        if self._closed or self._samples >= MAX_UTTERANCE_S * INPUT_SAMPLE_RATE:
            return
        started = time.thread_time()
        try:
            if self._decoder is None:
                self._decoder = self._worker.pool.acquire()
                # A fresh front end (noise estimate, cepstral mean) for this session, carrying on
                # with this session's own mean when it has one: a pooled decoder must not hear a
                # session with the previous speaker's adaptation.
                self._decoder.reinit_feat()
                if self._cmn is not None:
                    self._decoder.set_cmn(self._cmn)
                self._decoder.start_utt()
            self._decoder.process_raw(float_to_s16le(np.asarray(samples)), False, False)
        except Exception:
            # Reported to whoever asks for this utterance's transcript: it comes back empty.
            log.exception("pocketsphinx failed while decoding")
            self._end_utterance()
            return
        finally:
            self.cpu_s += time.thread_time() - started
            self.decoded_s += len(samples) / INPUT_SAMPLE_RATE
        self._samples += len(samples)
        self._since_partial += len(samples)
        if self._on_partial is not None and self._since_partial >= self._partial_every:
            self._since_partial = 0
            text = self._hyp()
            if text and text != self._last_partial:
                self._last_partial = text
                self._on_partial(text)

    def _hyp(self) -> str:
        hyp = self._decoder.hyp() if self._decoder is not None else None
        return str(hyp.hypstr).strip() if hyp is not None else ""

    def _end_utterance(self, ended: bool = False) -> None:
        """Return the decoder to the pool (ending its utterance unless ``ended``) and reset."""
        decoder, self._decoder = self._decoder, None
        self._samples = self._since_partial = 0
        self._last_partial = ""
        if decoder is None:
            return
        try:
            if not ended:
                decoder.end_utt()
            self._cmn = str(decoder.get_cmn())
        except Exception:
            log.exception("pocketsphinx failed to end an utterance; the decoder is dropped")
            self._worker.pool.lent -= 1
            self._worker.pool.freed = True
            return
        self._worker.pool.release(decoder)

    def _answer(self, kind: str) -> Hypothesis:
        audio_s = self._samples / INPUT_SAMPLE_RATE
        if kind == "partial":
            return Hypothesis(self._hyp(), False, audio_s)
        text = ""
        ended = False
        if self._decoder is not None:
            # The search can end without reaching a final state (a cut-off last word) and then
            # has no hypothesis at all; the first pass's best path is still the right answer.
            running = self._hyp()
            self._decoder.end_utt()
            ended = True
            text = self._hyp() or running
        self._end_utterance(ended)
        return Hypothesis(text if kind == "final" else "", kind == "final", audio_s)
