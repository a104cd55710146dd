"""Visemes from a phone decoder that uses the audio already on hand, and the reply's text.

Why: the server holds reply audio well ahead of playback (cloud engines stream faster than
real time, and presence sends up to ``max_lead_ms`` ahead), so when a frame is animated the
audio after it is usually there. ``AlignedAnimator`` decodes phones with
``presence.lipsync.decoder`` and reads each frame's phone off the best path ending up to
``max_lookahead_ms`` after it: as much look-ahead as the audio on hand allows, capped. When
the engine streams the reply's text (``add_text``), its words' eSpeak phones are aligned to
the audio; stretches the text does not explain (late, missing, wrong) come from the phone
loop. Frames are coarticulated as in ``PhonemeAnimator``: each is a triangular average of
the phone track from 60 ms before it to 40 ms after.

Optionally (``DecoderConfig.extra_weight`` / ``text_extra_weight`` > 0; off by default, see
docs/lipsync.md for why) the phone scores also get the log-probability that an MLP trained
on eSpeak NG speech (``presence.lipsync.train``) gives each phone's viseme, from log-mel rows
that need no audio the decoder does not already wait for.

When frames leave: without text (``use_text=False``), as soon as audio reaches
``max_lookahead_ms`` past them; with text, only when ``poll`` says they are due (so words
that come late can still shape them); and in both cases, with
whatever look-ahead there is (at least ``min_lookahead_ms``, 30 ms, as the causal
``AudioAnimator`` always had), when ``poll(now_sample)`` says playback is within
``guard_ms`` of them. The first audio frame is never
held: only animation frames wait, and at most until shortly before they play.
"""

from __future__ import annotations

import functools
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from presence.lipsync.audio import AudioModel, decoder_model, stack_context
from presence.lipsync.base import VISEME_INDEX, VISEMES, FrameGrid, VisemeFrame, Weights, rest_weights
from presence.lipsync.decoder import DecoderConfig, Matrix, PhoneDecoder, phone_bigram
from presence.lipsync.features import N_FEATURES, FeatureStream
from presence.lipsync.sphinx_am import (
    N_CEP,
    AcousticModel,
    CepstrumStream,
    delta_streams,
    model_dir,
    packaged_acoustic_model,
    phone_viseme,
)
from presence.lipsync.transcript import Phonemizer, TranscriptPhones, espeak_phonemize
from presence.media import AudioChunk

MAX_LOOKAHEAD_MS: Final = 250.0
GUARD_MS: Final = 40.0  # > the session's 32 ms tick: a frame leaves at least 8 ms before playback reaches it
MIN_LOOKAHEAD_MS: Final = 30.0
#: Text phones the alignment never skips: speakers reduce t, d, h and vowels, but the lips
#: close for every p, b and m (and touch the teeth for f, v), and that is what is seen.
KEPT_PHONES: Final = frozenset({"P", "B", "M", "F", "V"})
SILENT_DB: Final = -70.0
FUTURE_FRAMES: Final = 3  # sphinx's own delta layout: frame t needs cepstra up to t+3
ANTICIPATION_FRAMES: Final = 4  # 40 ms
CARRYOVER_FRAMES: Final = 6  # 60 ms
_SIL: Final = VISEME_INDEX["sil"]
#: Frames per acoustic-model call: a released reply brings a second of audio at once, and
#: matrices that large make OpenBLAS start threads that spin against the other sessions.
BATCH_FRAMES: Final = 8
#: pocketsphinx's frame t is the 25.6 ms window starting at 10t ms (centred at 10t + 12.8);
#: the log-mel row j is centred at 10j ms, so row t + 1 is the nearest.
MEL_ROW: Final = 1
VISEME_FLOOR: Final = 1e-3  # the fused model's posteriors are floored: it may be sure and wrong


@functools.cache
def loop_bigram(phones: tuple[str, ...]) -> Matrix:
    """The phone bigram of the pronouncing dictionary in the pocketsphinx wheel (read once)."""
    path = model_dir().parent / "cmudict-en-us.dict"
    pronunciations = [line.split()[1:] for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return phone_bigram(phones, pronunciations)


def _kernel() -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    offsets = np.arange(-CARRYOVER_FRAMES, ANTICIPATION_FRAMES + 1)
    weights = np.where(offsets >= 0, 1.0 - offsets / (ANTICIPATION_FRAMES + 1), 1.0 + offsets / (CARRYOVER_FRAMES + 1))
    return offsets, weights


class AlignedAnimator:
    """Animator from reply audio (decoded with look-ahead) and, when given, the reply's text."""

    def __init__(
        self,
        sample_rate: int,
        fps: int = 60,
        *,
        max_lookahead_ms: float = MAX_LOOKAHEAD_MS,
        guard_ms: float = GUARD_MS,
        min_lookahead_ms: float = MIN_LOOKAHEAD_MS,
        use_text: bool = True,
        use_lm: bool = True,
        hold_for_text: bool | None = None,
        model: AcousticModel | None = None,
        config: DecoderConfig | None = None,
        phonemize: Phonemizer = espeak_phonemize,
        viseme_model: AudioModel | None = None,
        viseme_log_prior: npt.NDArray[np.float64] | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self.fps = fps
        self.grid = FrameGrid(sample_rate, fps)
        self.model = model or packaged_acoustic_model()
        self.config = config or DecoderConfig()
        fused = self.config.extra_weight > 0 or self.config.text_extra_weight > 0
        #: The eSpeak-trained viseme model whose log-posteriors join the phone scores, if any.
        self.viseme_model = (viseme_model or decoder_model()) if fused else None
        #: Subtracted from the MLP's log-probabilities (a hybrid model's scaled likelihoods:
        #: its posteriors already count how common each viseme is, as the phone loop does).
        self.viseme_log_prior = np.zeros(len(VISEMES)) if viseme_log_prior is None else viseme_log_prior
        self.use_text = use_text
        self.hold_for_text = use_text if hold_for_text is None else hold_for_text
        self.lookahead_samples = round(max_lookahead_ms * sample_rate / 1000)
        self.guard_samples = round(guard_ms * sample_rate / 1000)
        self.min_lookahead_samples = round(min(min_lookahead_ms, max_lookahead_ms) * sample_rate / 1000)
        self._cepstra = CepstrumStream(sample_rate)
        self._hop = self._cepstra.geometry.hop
        self._window = self._cepstra.geometry.window
        self._cap_frames = int(max_lookahead_ms * sample_rate / 1000) // self._hop
        phones = self.model.phones
        self._loop = np.array([i for i, p in enumerate(phones) if not p.startswith("+")], dtype=np.int64)
        self._silence = phones.index("SIL")
        self._kept = frozenset(i for i, p in enumerate(phones) if p in KEPT_PHONES)
        self._loop_lm = loop_bigram(tuple(phones[i] for i in self._loop)) if use_lm else None
        self._phone_viseme = np.array([VISEME_INDEX[phone_viseme(p)] for p in phones], dtype=np.int64)
        self._text = TranscriptPhones({p: i for i, p in enumerate(phones)}, phonemize)
        self._kernel_offsets, self._kernel_weights = _kernel()
        self.reset()

    # ---------------------------------------------------------------- Animator

    def reset(self) -> None:
        """Forget the reply; the cepstral mean is kept (the next reply is the same voice)."""
        self._cepstra.restart()
        self._decoder = PhoneDecoder(self._loop, self._silence, self.config, self._kept)
        self._decoder.loop_lm = self._loop_lm
        self._text.reset()
        self._rows = np.zeros((0, N_CEP))
        self._rows_start = 0
        self._mel = FeatureStream(self.sample_rate)
        self._mel_rows = np.zeros((0, N_FEATURES), dtype=np.float32)
        self._mel_start = 0  # log-mel row index of self._mel_rows[0]
        self._levels: list[float] = []
        self._start: int | None = None
        self._received = 0
        self._next_frame: int | None = None
        self._pending_text: tuple[str, bool] | None = None
        self.lookaheads_ms: list[float] = []  # per frame emitted: audio on hand after it, capped
        self.text_frames = 0  # frames whose phone came from the text

    def push(self, chunk: AudioChunk, start_sample: int) -> list[VisemeFrame]:
        if self._start is None or start_sample != self._start + self._received:
            pending = self._pending_text
            self.reset()
            self._start = start_sample
            self._next_frame = self.grid.first_at_or_after(start_sample)
            if pending is not None:
                self.add_text(*pending)
        rows, levels = self._cepstra.push(chunk.samples)
        self._rows = np.concatenate([self._rows, rows])
        self._levels.extend(levels.tolist())
        if self.viseme_model is not None:
            self._mel_rows = np.concatenate([self._mel_rows, self._mel.push(chunk.samples)])
        self._received += len(chunk.samples)
        self._decode(final=False)
        if self.hold_for_text:  # frames wait for poll(): late words can still shape them
            return []
        end = self._start + self._received
        return self._emit(until=end - self.lookahead_samples + 1)

    def poll(self, now_sample: int) -> list[VisemeFrame]:
        """Frames that playback at ``now_sample`` is about to reach, with the look-ahead there
        is, but never less than ``min_lookahead_ms`` (the causal animator's 30 ms): an engine
        that delivers at real time gets its frames as late, not later, than before."""
        if self._start is None or self._next_frame is None:
            return []
        end = self._start + self._received
        return self._emit(until=min(now_sample + self.guard_samples, end - self.min_lookahead_samples + 1))

    def add_text(self, text: str, final: bool) -> None:
        """The reply's text so far (cumulative, as engines send it)."""
        if not self.use_text:
            return
        if self._start is None:  # before the reply's audio: used when it starts
            self._pending_text = (text, final)
            return
        phones = self._text.update(text, final)
        if phones:
            self._decoder.text_final = final
            self._decoder.extend(phones, redo_from=self._redo_from())

    def _redo_from(self) -> int | None:
        """Where new words must be decoded again: from where the best path entered the last
        word it knew (that word may have been stretched over the audio of the next, not yet
        known), but not before the first frame whose animation has not left."""
        first = self._frame_of(self._next_frame or 0) - CARRYOVER_FRAMES
        last_word = self._decoder.last_word()
        units = self._decoder.best_path(first)
        if len(units) == 0 or last_word is None:
            return first
        safe = np.maximum(units, 0)
        before = (units >= 0) & self._decoder.is_text(safe) & (self._decoder.unit_word(safe) < last_word)
        inside = np.flatnonzero(before)
        return first + int(inside[-1]) + 1 if len(inside) else first

    def flush(self) -> list[VisemeFrame]:
        if self._start is None or self._next_frame is None:
            self.reset()
            return []
        if self.viseme_model is not None:
            self._mel_rows = np.concatenate([self._mel_rows, self._mel.finish()])
        self._decode(final=True)
        frames = self._emit(until=self._start + self._received)
        assert self._next_frame is not None
        frames.append(VisemeFrame(self._next_frame, rest_weights()))
        self.reset()
        return frames

    def report(self) -> dict[str, Any]:
        """The reply's effective look-ahead (ms per frame: min, median), the share of frames
        whose phone came from the text, and how many of the text's words reached the decoder."""
        if not self.lookaheads_ms:
            return {}
        values = np.array(self.lookaheads_ms)
        return {
            "lookahead_ms_min": round(float(values.min()), 1),
            "lookahead_ms_p50": round(float(np.median(values)), 1),
            "text_aligned_share": round(self.text_frames / len(values), 3),
            "text_words": self._text.words_spoken,
        }

    # ---------------------------------------------------------------- internals

    def _frame_of(self, instant: int) -> int:
        """Analysis frame (10 ms, from the reply's first sample) centred nearest ``instant``."""
        assert self._start is not None
        return round((instant - self._start - self._window / 2) / self._hop)

    def _decode(self, final: bool) -> None:
        """Feed the decoder every analysis frame whose features are complete."""
        held = self._rows_start + len(self._rows)
        first = self._decoder.frames
        last = held - 1 if final else held - 1 - FUTURE_FRAMES
        if self.viseme_model is not None and not final:
            last = min(last, self._mel_start + len(self._mel_rows) - 1 - MEL_ROW - self.viseme_model.future_rows)
        if last < first:
            return
        local = first - self._rows_start
        streams = delta_streams(self._rows, local, last - first + 1, future=FUTURE_FRAMES)
        extra = self._viseme_scores(first, last - first + 1)
        for at in range(0, last - first + 1, BATCH_FRAMES):
            batch = (
                streams[0][at : at + BATCH_FRAMES],
                streams[1][at : at + BATCH_FRAMES],
                streams[2][at : at + BATCH_FRAMES],
            )
            more = None if extra is None else extra[at : at + BATCH_FRAMES]
            self._decoder.push(self.model.state_log_likelihoods(batch), more)
        keep_from = max(self._decoder.frames - self._rows_start - 2 * FUTURE_FRAMES - 1, 0)
        self._rows = self._rows[keep_from:]
        self._rows_start += keep_from
        if self.viseme_model is not None:
            drop = max(self._decoder.frames + MEL_ROW - self.viseme_model.past_rows - self._mel_start - 1, 0)
            drop = min(drop, max(len(self._mel_rows) - 1, 0))
            self._mel_rows = self._mel_rows[drop:]
            self._mel_start += drop

    def _viseme_scores(self, first: int, count: int) -> Matrix | None:
        """Per phone, the log-posterior the eSpeak-trained model gives its viseme, for analysis
        frames ``first..``; the log-mel row nearest frame t's centre is t + ``MEL_ROW``."""
        model = self.viseme_model
        if model is None or len(self._mel_rows) == 0:
            return None
        local = first + MEL_ROW - self._mel_start
        probs = model.probabilities(stack_context(self._mel_rows, model.offsets, local, count))
        logp = np.log(np.maximum(probs.astype(np.float64), VISEME_FLOOR)) - self.viseme_log_prior
        scores: Matrix = logp[:, self._phone_viseme]
        return scores

    def _emit(self, until: int) -> list[VisemeFrame]:
        assert self._start is not None and self._next_frame is not None
        if self._next_frame >= until:
            return []
        instants = np.arange(self._next_frame, until, self.grid.step)
        self._next_frame = int(instants[-1]) + self.grid.step
        end = self._start + self._received
        frames = [VisemeFrame(int(t), self._weights_at(int(t))) for t in instants]
        self.lookaheads_ms += [min(end - int(t), self.lookahead_samples) * 1000 / self.sample_rate for t in instants]
        self._decoder.forget_before(self._frame_of(self._next_frame) - CARRYOVER_FRAMES - 1)
        return frames

    def _weights_at(self, instant: int) -> Weights:
        decoded = self._decoder.frames
        if decoded == 0:
            return rest_weights()
        centre = min(max(self._frame_of(instant), 0), decoded - 1)
        horizon = min(centre + self._cap_frames, decoded - 1)
        first = centre - CARRYOVER_FRAMES
        units = self._decoder.best_path(first, horizon)
        taps = centre + self._kernel_offsets
        inside = (taps >= first) & (taps <= horizon)
        unit = units[np.clip(taps - first, 0, len(units) - 1)]
        valid = inside & (unit >= 0)
        visemes = np.full(len(taps), _SIL, dtype=np.int64)
        if valid.any():
            safe = np.where(valid, unit, 0)
            phones = self._decoder.unit_phone(safe)
            visemes = np.where(valid, self._phone_viseme[phones], _SIL)
            levels = np.array([self._level(int(t)) for t in taps])
            loop = ~self._decoder.is_text(safe)
            visemes = np.where(valid & loop & (levels < SILENT_DB), _SIL, visemes)
            centre_unit = unit[CARRYOVER_FRAMES]
            if centre_unit >= 0 and self._decoder.is_text(np.array([centre_unit]))[0]:
                self.text_frames += 1
        weights = np.zeros(len(VISEMES))
        np.add.at(weights, visemes, self._kernel_weights * inside)
        total = weights.sum()
        if total <= 0:
            return rest_weights()
        out: Weights = (weights / total).astype(np.float32)
        return out

    def _level(self, frame: int) -> float:
        if 0 <= frame < len(self._levels):
            return self._levels[frame]
        return 0.0
