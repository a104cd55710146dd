"""``presence bench lipsync``, the ``AlignedAnimator`` rows: look-ahead sweep, transcripts, arrival times.

- **Sweep**: the decoder without text, each frame read ``L`` ms behind the newest audio
  (30, 60, 110, 250), fed 20 ms chunks.
- **Transcripts**: the utterance's text (``<utt>.txt``; word times from ``<utt>.wrd``) given
  up front, or degraded: every tenth word dropped or changed (alternately, counted over the
  corpus) and each word's text arriving 300 ms after the end of its audio.
- **Arrival-timed**: a simulation of the session around the animator. Reply audio comes in
  the Gemini fake's 40 ms chunks, either all at once (the fake, like the service, generates
  faster than real time) or at real time; the session pushes a chunk once the audio it has
  sent is less than ``max_lead_ms`` (1 s) ahead of playback, and polls the animator every
  32 ms (its ticker); text reaches the animator when it arrives. A frame leaves when playback
  comes within 40 ms of it (or, without text, once the audio reaches 250 ms past it), with the
  look-ahead there is then, capped at 250 ms: the look-ahead each frame gets is the real one,
  and is reported.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from presence.lipsync.aligned import FUTURE_FRAMES, MEL_ROW, VISEME_FLOOR, AlignedAnimator
from presence.lipsync.audio import DECODER_MODEL_FILE, MODEL_FILE, AudioModel, load_model, model_path, stack_context
from presence.lipsync.base import VISEME_INDEX, VisemeFrame, rest_weights
from presence.lipsync.decoder import DecoderConfig
from presence.lipsync.features import features_of
from presence.lipsync.scoring import FRAME_MS, PhoneSegment
from presence.lipsync.sphinx_am import AcousticModel, CepstrumStream, delta_streams, phone_viseme
from presence.media import AudioChunk

from presence.bench.lipsync import CHUNK_MS, Estimate, Recording, Weights  # isort: skip

SWEEP_MS: Final = (30, 60, 110, 250)
LATE_MS: Final = 300
ENGINE_CHUNK_MS: Final = 40  # the Gemini fake's audio parts
MAX_LEAD_MS: Final = 1000  # the session's default --max-lead-ms
TICK_MS: Final = 32  # the session's ticker
CHANGED_WORDS: Final = ("banana", "yesterday", "window", "purple", "seven", "garden")
#: The eSpeak-trained models tried inside the decoder's scores (issue 17, item 3): name → file.
FUSED_MODELS: Final = {"log-mel MLP, 10 ms future": MODEL_FILE, "log-mel MLP, 30 ms future": DECODER_MODEL_FILE}
SPREAD_SENTENCES: Final = 40


@dataclass(frozen=True, slots=True)
class Fusion:
    """An eSpeak-trained MLP in the decoder's scores: the model, its weights, its viseme prior."""

    model: AudioModel
    config: DecoderConfig
    log_prior: npt.NDArray[np.float64] | None


def fusion_on_espeak(viseme_model: AudioModel, acoustic: AcousticModel, prior: bool) -> Fusion:
    """The fusion's weights for the loop and the text, and (``prior``) its viseme prior, by fixed
    rules on eSpeak NG speech, never on the evaluation data: the prior is the MLP's mean
    posterior; per frame, the spread (standard deviation over the model's real phones) of the
    MLP's scores equals that of pocketsphinx's phone scores at the loop's and the text's
    acoustic scales (medians over seeded sentences)."""
    from presence.bench.lipsync import espeak_corpus

    recordings, _, _ = espeak_corpus(SPREAD_SENTENCES, seed=99)
    real = np.array([not p.startswith("+") for p in acoustic.phones])
    viseme = np.array([VISEME_INDEX[phone_viseme(p)] for p in acoustic.phones])[real]
    sphinx, posteriors = [], []
    for rec in recordings:
        cepstra, _ = CepstrumStream(rec.sample_rate).push(rec.audio)
        n = len(cepstra) - FUTURE_FRAMES
        scores = acoustic.state_log_likelihoods(delta_streams(cepstra, 0, n)).max(axis=2)[:, real]
        rows = features_of(rec.audio, rec.sample_rate)
        posteriors.append(viseme_model.probabilities(stack_context(rows, viseme_model.offsets, MEL_ROW, n)))
        sphinx.append(scores.std(axis=1))
    probs = np.concatenate(posteriors).astype(np.float64)
    log_prior = np.log(np.maximum(probs.mean(axis=0), VISEME_FLOOR)) if prior else None
    mlp = np.log(np.maximum(probs, VISEME_FLOOR)) - (0.0 if log_prior is None else log_prior)
    ratio = float(np.median(np.concatenate(sphinx)) / np.median(mlp[:, viseme].std(axis=1)))
    base = DecoderConfig()
    loop, text = round(ratio * base.scale, 3), round(ratio * base.text_scale, 3)
    return Fusion(viseme_model, replace(base, extra_weight=loop, text_extra_weight=text), log_prior)


#: (audio position in samples at which the text is known, cumulative text, final)
TextEvent = tuple[int, str, bool]


@dataclass(frozen=True, slots=True)
class Transcript:
    """Per recording, the words to send and where each one's audio lies (samples)."""

    words: list[str]
    spans: list[tuple[int, int]]


def transcripts(recordings: list[Recording], degrade: bool) -> list[Transcript]:
    """The words of each recording (from ``.wrd``, else ``.txt`` spread evenly); degraded:
    every tenth word, counted over the whole corpus, is dropped or changed in turn."""
    out: list[Transcript] = []
    count = 0
    for rec in recordings:
        segments: list[PhoneSegment] = list(rec.words)
        if not segments:
            tokens = rec.text.split()
            edges = np.linspace(0, len(rec.audio), len(tokens) + 1).astype(int)
            segments = [PhoneSegment(int(a), int(b), w) for a, b, w in zip(edges, edges[1:], tokens, strict=False)]
        words: list[str] = []
        spans: list[tuple[int, int]] = []
        for seg in segments:
            count += 1
            word = seg.phone
            if degrade and count % 10 == 0:
                if (count // 10) % 2:
                    continue  # dropped
                word = CHANGED_WORDS[(count // 20) % len(CHANGED_WORDS)]
            words.append(word)
            spans.append((seg.start_sample, seg.end_sample))
        out.append(Transcript(words, spans))
    return out


def text_events(script: Transcript, mode: str, rate: int, n_samples: int) -> list[TextEvent]:
    """``"upfront"``: the whole text before the audio; ``"with"``: each word as its audio
    starts; ``"late"``: each word once its audio has ended (the caller adds the delay: in
    audio, or in time). Engines send the text stripped, so a word counts as complete only
    once the next one (or the final text) follows."""
    if mode == "upfront":
        return [(0, " ".join(script.words), True)]
    events: list[TextEvent] = []
    for i, (start, end) in enumerate(script.spans):
        at = start if mode == "with" else end
        events.append((at, " ".join(script.words[: i + 1]), False))
    events.append((max(n_samples, events[-1][0] if events else 0), " ".join(script.words), True))
    return sorted(events, key=lambda e: e[0])


def _collect(frames: list[VisemeFrame], rec: Recording, offset: int) -> Weights:
    frame = rec.sample_rate * FRAME_MS // 1000
    out = np.tile(rest_weights(), (rec.frames, 1))
    for f in frames:
        k, rem = divmod(f.t_samples - offset - frame // 2, frame)
        if rem == 0 and 0 <= k < rec.frames:
            out[k] = f.weights
    return out


def stream_with_text(animator: AlignedAnimator, rec: Recording, events: list[TextEvent]) -> Weights:
    """20 ms chunks, each word's text given with the chunk during which it becomes known."""
    rate = rec.sample_rate
    offset = rate * FRAME_MS // 1000 // 2
    chunk = rate * CHUNK_MS // 1000
    pending = list(events)
    frames: list[VisemeFrame] = []
    for start in range(0, len(rec.audio), chunk):
        while pending and pending[0][0] < start + chunk:
            _, text, final = pending.pop(0)
            animator.add_text(text, final)
        frames += animator.push(AudioChunk(0, rec.audio[start : start + chunk], rate), offset + start)
    frames += animator.flush()
    return _collect(frames, rec, offset)


def stream_timed(
    animator: AlignedAnimator, rec: Recording, events: list[TextEvent], realtime: bool, late_ms: int = 0
) -> tuple[Weights, list[float]]:
    """The session around the animator, in simulated time (see the module docstring); returns
    the frames and each frame's effective look-ahead (ms)."""
    rate = rec.sample_rate
    offset = rate * FRAME_MS // 1000 // 2  # timeline sample of the reply's first sample, placed at time 0
    step = rate * ENGINE_CHUNK_MS // 1000
    lead = rate * MAX_LEAD_MS // 1000
    starts = list(range(0, len(rec.audio), step))
    arrivals = [(i + 1) * step if realtime else 0 for i in range(len(starts))]  # in samples of time
    # Events: (time, order, kind, payload), kind 0 push, 1 text, 2 poll. The engine's outputs
    # queue in the session in arrival order, so an output waits for the chunks before it.
    queue: list[tuple[int, int, int, object]] = []
    pushed_at = [max(arrival, start - lead) for start, arrival in zip(starts, arrivals, strict=True)]
    for i, start in enumerate(starts):
        heapq.heappush(queue, (pushed_at[i], 2 * i, 0, start))
    end_time = max(pushed_at, default=0)  # the last push, then the end of the reply
    late = late_ms * rate // 1000
    for position, text, final in events:  # the session hands text to the lips on arrival
        index = min(max(position - 1, 0) // step, len(starts) - 1)
        at = arrivals[index] + (late if position > 0 else 0)
        heapq.heappush(queue, (at, 2 * index + 1, 1, (text, final)))
    tick = TICK_MS * rate // 1000
    for t in range(0, end_time + tick, tick):
        heapq.heappush(queue, (t, 2 * len(starts) + 2, 2, None))
    frames: list[VisemeFrame] = []
    while queue and queue[0][0] <= end_time:
        now, _, kind, payload = heapq.heappop(queue)
        if kind == 0:
            assert isinstance(payload, int)
            piece = rec.audio[payload : payload + step]
            frames += animator.push(AudioChunk(0, piece, rate), offset + payload)
        elif kind == 1:
            assert isinstance(payload, tuple)
            animator.add_text(*payload)
        frames += animator.poll(offset + now)
    lookaheads = list(animator.lookaheads_ms)
    frames += animator.flush()  # the engine's end of reply follows its last chunk
    return _collect(frames, rec, offset), lookaheads


def aligned_estimators(
    recordings: list[Recording], model: AcousticModel, with_text: bool, fuse: bool = True
) -> dict[str, Estimate]:
    """Every AlignedAnimator row, in the order the report shows them."""

    def make(rate: int, lookahead_ms: float = 250.0, text: bool = True, fused: Fusion | None = None) -> AlignedAnimator:
        return AlignedAnimator(
            rate,
            fps=1000 // FRAME_MS,
            max_lookahead_ms=lookahead_ms,
            use_text=text,
            model=model,
            config=None if fused is None else fused.config,
            viseme_model=None if fused is None else fused.model,
            viseme_log_prior=None if fused is None else fused.log_prior,
        )

    fusions: dict[str, Fusion] = {}
    for name, file in (FUSED_MODELS if fuse else {}).items():
        path = model_path(file)
        if Path(path).exists():
            for prior in (False, True):
                fusion = fusion_on_espeak(load_model(path), model, prior)
                weights = f"{fusion.config.extra_weight} / {fusion.config.text_extra_weight}"
                fusions[f"+ {name}{' ÷ prior' if prior else ''} (weights {weights})"] = fusion

    rows: dict[str, Estimate] = {}
    Timed = Callable[[Recording], tuple[Weights, list[float]]]

    def sweep(la: int) -> Callable[[Recording], Weights]:
        return lambda rec: stream_with_text(make(rec.sample_rate, la, False), rec, [])

    def timed_audio(realtime: bool, fused: Fusion | None = None) -> Timed:
        return lambda rec: stream_timed(make(rec.sample_rate, text=False, fused=fused), rec, [], realtime)

    for la in SWEEP_MS:
        rows[f"AlignedAnimator, audio only, {la} ms look-ahead"] = _run(recordings, sweep(la), la)
    rows["arrival-timed, Gemini fake's bursts: audio only"] = _run_timed(recordings, timed_audio(False))
    rows["arrival-timed, real-time delivery: audio only"] = _run_timed(recordings, timed_audio(True))
    for name, fused in fusions.items():
        rows[f"arrival-timed, Gemini fake's bursts: audio only {name}"] = _run_timed(
            recordings, timed_audio(False, fused)
        )
    if not with_text:
        return rows
    reference = transcripts(recordings, degrade=False)
    degraded = transcripts(recordings, degrade=True)
    by_rec = {rec.name: i for i, rec in enumerate(recordings)}

    def upfront(scripts: list[Transcript]) -> Callable[[Recording], Weights]:
        def one(rec: Recording) -> Weights:
            events = text_events(scripts[by_rec[rec.name]], "upfront", rec.sample_rate, len(rec.audio))
            return stream_with_text(make(rec.sample_rate), rec, events)

        return one

    rows["AlignedAnimator + reference text, 250 ms"] = _run(recordings, upfront(reference), 250)
    rows["AlignedAnimator + degraded text (1 word in 10 dropped/changed), 250 ms"] = _run(
        recordings, upfront(degraded), 250
    )

    def timed(scripts: list[Transcript], mode: str, realtime: bool, fused: Fusion | None = None) -> Timed:
        def one(rec: Recording) -> tuple[Weights, list[float]]:
            events = text_events(scripts[by_rec[rec.name]], mode, rec.sample_rate, len(rec.audio))
            late = LATE_MS if mode == "late" else 0
            return stream_timed(make(rec.sample_rate, fused=fused), rec, events, realtime, late)

        return one

    rows["arrival-timed, Gemini fake's bursts: reference text with the audio"] = _run_timed(
        recordings, timed(reference, "with", False)
    )
    rows["arrival-timed, Gemini fake's bursts: degraded text, 300 ms late"] = _run_timed(
        recordings, timed(degraded, "late", False)
    )
    rows["arrival-timed, real-time delivery: degraded text, 300 ms late"] = _run_timed(
        recordings, timed(degraded, "late", True)
    )
    for name, fused in fusions.items():
        rows[f"arrival-timed, Gemini fake's bursts: reference text with the audio {name}"] = _run_timed(
            recordings, timed(reference, "with", False, fused)
        )
    return rows


def _run(recordings: list[Recording], one: Callable[[Recording], Weights], lookahead_ms: float) -> Estimate:
    started = time.process_time()
    weights = [one(rec) for rec in recordings]
    return Estimate(weights, lookahead_ms, time.process_time() - started, "phone decoder, numpy")


def _run_timed(recordings: list[Recording], one: Callable[[Recording], tuple[Weights, list[float]]]) -> Estimate:
    started = time.process_time()
    weights: list[Weights] = []
    lookaheads: list[float] = []
    for rec in recordings:
        w, la = one(rec)
        weights.append(w)
        lookaheads += la
    cpu = time.process_time() - started
    values = np.asarray(lookaheads or [0.0])
    p5, p50 = np.percentile(values, [5, 50])
    notes = f"effective look-ahead: min {values.min():.0f}, p5 {p5:.0f}, p50 {p50:.0f} ms"
    return Estimate(weights, float(p50), cpu, notes)
