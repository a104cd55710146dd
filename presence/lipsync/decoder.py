"""Streaming Viterbi over the acoustic model's phone HMMs: a free phone loop, and the reply's text.

Why: the acoustic model's frame posteriors (``AudioAnimator``) guess each 10 ms alone; a
decoder that may look ahead picks phone *sequences* with plausible durations, and when the
words of the reply are known it only has to find where each of their phones lies (forced
alignment), which is far easier than recognising them.

The search space is a list of *units*, three left-to-right HMM states each (the model's
context-independent senones; the middle state may be skipped, so a phone lasts at least
20 ms):

- **loop units**, one per model phone: a free phone loop (``insertion_penalty`` per phone).
  Alone, they are the audio-only decoder.
- **text units**, appended as the reply's words arrive: the words' phones in order, with an
  optional pause between words. A path may leave the text for the loop (``lost_penalty``:
  the transcript is wrong, or has not arrived yet) and come back at the start of a word at
  most ``resync_words`` ahead of where it left (``resync_penalty``): a dropped, changed or
  late word costs a stretch of loop, not the rest of the alignment.

Everything is in natural-log units with the acoustic log-likelihoods multiplied by
``scale``. Pure and synchronous: frames of state log-likelihoods in, unit paths out; the
caller decides how far behind the newest frame it reads the path (its look-ahead).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

_NONE: Final = -1
_STAY: Final = -1  # state-0 back-pointer: stayed in the unit
_START: Final = -2  # state-0 back-pointer: entered at the reply's first frame
WINDOW_BEHIND_WORDS: Final = 2
WINDOW_AHEAD_WORDS: Final = 16


@dataclass(frozen=True, slots=True)
class DecoderConfig:
    """Search parameters (chosen on eSpeak speech, never on the evaluation data)."""

    scale: float = 0.3  # acoustic scale of the loop
    text_scale: float = 0.15  # of the text: flatter, so durations weigh more in the alignment
    loop_frame_penalty: float = 0.5  # per frame in the loop while the text is known
    stay: float = float(np.log(0.6))  # self-loop of a state
    advance: float = float(np.log(0.4))
    skip: float = float(np.log(0.1))  # state 0 → state 2
    insertion_penalty: float = 0.0  # loop phone → loop phone (on top of the bigram)
    lm_weight: float = 1.0  # of the phone bigram between loop phones
    lost_penalty: float = 3.0  # text → loop
    resync_penalty: float = 3.0  # loop → a word start of the text
    resync_words: int = 4
    pause_penalty: float = 1.0  # an optional pause between words that is taken
    deletion_penalty: float = 3.0  # skipping a phone of the text (speakers reduce and drop some)
    #: Weights of the extra per-phone scores ``push`` may be given (the eSpeak-trained
    #: model's viseme log-posteriors), in the loop and in the text.
    extra_weight: float = 0.0
    text_extra_weight: float = 0.0


@dataclass(frozen=True, slots=True)
class TextPhone:
    """One phone of the reply's text: model phone index, and where it sits."""

    phone: int
    word: int  # index of its word in the reply (pauses take the next word's index)
    word_start: bool = False  # first phone of its word: a resync may land here
    optional: bool = False  # a pause between words, which the path may skip


class PhoneDecoder:
    """Viterbi over loop units (``loop_phones``) and text units added by ``extend``."""

    def __init__(
        self, loop_phones: Ints, silence: int, config: DecoderConfig | None = None, kept: frozenset[int] = frozenset()
    ) -> None:
        """``kept``: phones a path may not skip (lips that must close, for p b m)."""
        self.config = config or DecoderConfig()
        self.silence = silence
        self.kept = kept
        self.loop_lm: Matrix | None = None  # log P(next | previous) between loop phones, if set
        self.text_final = False  # the text is complete: its last phone is the end, not a pause in it
        self._phone = np.asarray(loop_phones, dtype=np.int64).copy()
        n = len(self._phone)
        self._n_loop = n
        self.silence_unit = int(np.flatnonzero(self._phone == silence)[0])
        self._text = np.zeros(n, dtype=bool)
        self._word = np.full(n, _NONE, dtype=np.int64)
        self._word_start = np.zeros(n, dtype=bool)
        self._prev = np.full(n, _NONE, dtype=np.int64)  # predecessor text unit
        self._prev_skip = np.full(n, _NONE, dtype=np.int64)  # over an optional pause
        self._prev_del = np.full(n, _NONE, dtype=np.int64)  # over a deleted phone
        self._entry_penalty = np.zeros(n)  # added when entering the unit from its predecessor
        self._last_text = _NONE
        self._first_text = _NONE
        self.progress_word = 0  # word of the newest text unit on the best path read so far
        self._loglik: list[Matrix] = []  # per frame (phones, 3), scaled
        self._delta: list[Matrix] = []  # per frame (units, 3)
        self._back0: list[Ints] = []  # per frame (units,): state-0 source unit, or _STAY
        self._back12: list[
            npt.NDArray[np.int8]
        ] = []  # per frame (units, 2): states 1, 2: 0 stay, 1 from k−1, 2 from k−2
        self.first_frame = 0  # frame index of the lists' first entries (older ones are forgotten)

    # ---------------------------------------------------------------- the graph

    @property
    def units(self) -> int:
        return len(self._phone)

    @property
    def frames(self) -> int:
        """Frames decoded so far (frame indices count from the first ``push``)."""
        return self.first_frame + len(self._delta)

    def unit_phone(self, units: Ints) -> Ints:
        phones: Ints = self._phone[units]
        return phones

    def is_text(self, units: Ints) -> npt.NDArray[np.bool_]:
        text: npt.NDArray[np.bool_] = self._text[units]
        return text

    def unit_word(self, units: Ints) -> Ints:
        words: Ints = self._word[units]
        return words

    def last_word(self) -> int | None:
        """Word of the last text phone so far (None before any text)."""
        return None if self._last_text == _NONE else int(self._word[self._last_text])

    def text_units(self) -> int:
        return int(self._text.sum())

    def extend(self, phones: list[TextPhone], redo_from: int | None = None) -> None:
        """Append the next phones of the reply's text. Frames from ``redo_from`` on are decoded
        again with them (the text came late: its audio may already have been decoded)."""
        if not phones:
            return
        first = len(self._phone)
        count = len(phones)
        self._phone = np.concatenate([self._phone, [p.phone for p in phones]])
        self._text = np.concatenate([self._text, np.ones(count, dtype=bool)])
        self._word = np.concatenate([self._word, [p.word for p in phones]])
        self._word_start = np.concatenate([self._word_start, [p.word_start for p in phones]])
        prev = np.full(count, _NONE, dtype=np.int64)
        prev_skip = np.full(count, _NONE, dtype=np.int64)
        penalty = np.zeros(count)
        if self._first_text == _NONE:
            self._first_text = first
        last, before_pause = self._last_text, _NONE
        if last != _NONE and self._phone[last] == self.silence and self._prev[last] != _NONE:
            before_pause = int(self._prev[last])  # the previous batch ended on an optional pause
        for i, p in enumerate(phones):
            prev[i] = last
            if before_pause != _NONE:
                prev_skip[i] = before_pause
            if p.optional:
                penalty[i] = self.config.pause_penalty
                before_pause = last
            else:
                before_pause = _NONE
            last = first + i
        self._last_text = last
        self._prev = np.concatenate([self._prev, prev])
        self._prev_skip = np.concatenate([self._prev_skip, prev_skip])
        skippable = (prev >= 0) & ~np.isin(self._phone[np.maximum(prev, 0)], list(self.kept))
        self._prev_del = np.concatenate([self._prev_del, np.where(skippable, self._prev[np.maximum(prev, 0)], _NONE)])
        self._entry_penalty = np.concatenate([self._entry_penalty, penalty])
        redo = self.frames if redo_from is None else max(redo_from, self.first_frame)
        self._redo(redo)

    # ---------------------------------------------------------------- decoding

    def push(self, state_loglik: Matrix, extra: Matrix | None = None) -> None:
        """Decode frames of unscaled state log-likelihoods (frames, phones, 3), plus, if given,
        another model's log-scores per phone (frames, phones), weighted by ``extra_weight``."""
        c = self.config
        frames = np.asarray(state_loglik, dtype=np.float64)
        bonus = np.zeros(frames.shape[:2]) if extra is None else np.asarray(extra, dtype=np.float64)
        for frame, more in zip(frames, bonus, strict=True):
            loop = frame * c.scale + c.extra_weight * more[:, None]
            text = frame * c.text_scale + c.text_extra_weight * more[:, None]
            scaled = np.stack([loop - loop.max(), text - text.max()])  # (2, phones, 3)
            self._loglik.append(scaled)
            self._step(scaled)
            self._follow_frontier()

    def _follow_frontier(self) -> None:
        """Move the search window with the newest frame's best unit (less one word: it is
        the least settled part of the path), even when nobody reads the path for a while."""
        unit = int(np.argmax(self._delta[-1])) // 3
        if self._text[unit]:
            word = int(self._word[unit]) - 1
            if self.progress_word < word <= self.progress_word + self.config.resync_words:
                self.progress_word = word

    def _redo(self, frame: int) -> None:
        keep = frame - self.first_frame
        if keep >= len(self._delta):
            return
        self._delta = self._delta[:keep]
        self._back0 = self._back0[:keep]
        self._back12 = self._back12[:keep]
        for scaled in self._loglik[keep:]:
            self._step(scaled)

    def _text_window(self) -> slice:
        """Text units the search keeps alive: words near the path's progress (the text can be
        long; a path cannot be far from where it was last read)."""
        words = self._word[self._n_loop :]
        lo = int(np.searchsorted(words, self.progress_word - WINDOW_BEHIND_WORDS, side="left"))
        hi = int(np.searchsorted(words, self.progress_word + WINDOW_AHEAD_WORDS, side="right"))
        return slice(self._n_loop + lo, self._n_loop + hi)

    def _step(self, scaled: Matrix) -> None:
        c = self.config
        n, nl = len(self._phone), self._n_loop
        d = self._delta[-1] if self._delta else np.full((n, 3), -np.inf)
        if len(d) < n:  # text units appended since: unreachable until now
            d = np.vstack([d, np.full((n - len(d), 3), -np.inf)])
        new = np.full((n, 3), -np.inf)
        back0 = np.full(n, _STAY, dtype=np.int64)
        back12 = np.zeros((n, 2), dtype=np.int8)
        exits = np.append(d[:, 2] + c.advance, -np.inf)  # index _NONE (−1) reads −inf
        text = self._text_window() if self._last_text != _NONE else slice(nl, nl)
        loop_entry = np.full(nl, -np.inf)
        loop_source = np.full(nl, _STAY, dtype=np.int64)
        text_entry = np.full(text.stop - text.start, -np.inf)
        text_source = np.full(text.stop - text.start, _STAY, dtype=np.int64)
        if not self._delta:  # the reply starts in silence, or on its first word
            loop_entry[self.silence_unit] = 0.0
            loop_source[self.silence_unit] = _START
            first = self._first_text
            if first != _NONE and text.start <= first < text.stop:
                starts = [first] + ([first + 1] if self._phone[first] == self.silence and first + 1 < n else [])
                for u in starts:
                    if u < text.stop:
                        text_entry[u - text.start] = 0.0
                        text_source[u - text.start] = _START
        else:
            best_loop = int(np.argmax(exits[:nl]))
            from_loop = exits[best_loop]
            from_text = -np.inf
            best_text = _NONE
            if text.stop > text.start:
                leave = exits[text] - c.lost_penalty
                if not self.text_final and text.start <= self._last_text < text.stop:
                    leave[self._last_text - text.start] += c.lost_penalty  # more words are to come
                best_text = text.start + int(np.argmax(leave))
                from_text = leave[best_text - text.start]
            # loop units: another loop phone (weighed by the phone bigram), or the text was lost
            if self.loop_lm is not None:
                candidates = exits[:nl, None] + c.lm_weight * self.loop_lm
                loop_source = np.argmax(candidates, axis=0)
                loop_entry = candidates[loop_source, np.arange(nl)] - c.insertion_penalty
            else:
                loop_entry[:] = from_loop - c.insertion_penalty
                loop_source[:] = best_loop
            lost = from_text > loop_entry
            loop_entry = np.where(lost, from_text, loop_entry)
            loop_source = np.where(lost, best_text, loop_source)
            if text.stop > text.start:
                # text units: their predecessor, over a pause, over a deleted phone, or a resync
                prev, skip, dele = self._prev[text], self._prev_skip[text], self._prev_del[text]
                best = exits[prev] - self._entry_penalty[text]
                src = prev.copy()
                over = exits[skip]
                better = over > best
                best = np.where(better, over, best)
                src = np.where(better, skip, src)
                deleted = exits[dele] - c.deletion_penalty
                better = deleted > best
                best = np.where(better, deleted, best)
                src = np.where(better, dele, src)
                word = self._word[text]
                window = self._word_start[text] & (word >= self.progress_word)
                window &= word <= self.progress_word + c.resync_words
                resync = np.where(window, from_loop - c.resync_penalty, -np.inf)
                better = resync > best
                text_entry = np.where(better, resync, best)
                text_source = np.where(better, best_loop, src)
        loop_emit = scaled[0, self._phone[:nl]]
        if self._last_text != _NONE:
            loop_emit = loop_emit - c.loop_frame_penalty
        self._advance(d[:nl], loop_entry, loop_source, loop_emit, new[:nl], back0[:nl], back12[:nl])
        if text.stop > text.start:
            self._advance(
                d[text], text_entry, text_source, scaled[1, self._phone[text]], new[text], back0[text], back12[text]
            )
        self._delta.append(new)
        self._back0.append(back0)
        self._back12.append(back12)

    def _advance(
        self,
        d: Matrix,
        entry: Matrix,
        source: Ints,
        emit: Matrix,
        new: Matrix,
        back0: Ints,
        back12: npt.NDArray[np.int8],
    ) -> None:
        """One frame of the three-state HMMs of some units, written into ``new``/``back*``."""
        c = self.config
        stay0 = d[:, 0] + c.stay
        enters = entry > stay0
        new[:, 0] = np.where(enters, entry, stay0)
        back0[:] = np.where(enters, source, _STAY)
        stay1, came1 = d[:, 1] + c.stay, d[:, 0] + c.advance
        moved1 = came1 > stay1
        new[:, 1] = np.maximum(stay1, came1)
        stay2, came2, skipped2 = d[:, 2] + c.stay, d[:, 1] + c.advance, d[:, 0] + c.skip
        best2 = np.maximum(stay2, came2)
        skip2 = skipped2 > best2
        new[:, 2] = np.maximum(best2, skipped2)
        back12[:, 0] = moved1
        back12[:, 1] = np.where(skip2, 2, came2 > stay2)
        new += emit

    # ---------------------------------------------------------------- reading

    def best_path(self, first: int, last: int | None = None) -> Ints:
        """Unit per frame for frames ``first..last`` (default: the newest), on the best path
        ending at ``last``; frames before the first decoded one read as −1."""
        end = self.frames - 1 if last is None else min(last, self.frames - 1)
        if end < first or end < self.first_frame:
            return np.full(max(end - first + 1, 0), _NONE, dtype=np.int64)
        d = self._delta[end - self.first_frame]
        flat = int(np.argmax(d))
        unit, state = divmod(flat, 3)
        out = np.full(end - first + 1, _NONE, dtype=np.int64)
        for f in range(end, max(first, self.first_frame) - 1, -1):
            out[f - first] = unit
            i = f - self.first_frame
            if state == 0:
                src = int(self._back0[i][unit])
                if src == _START:
                    break
                if src != _STAY:
                    unit, state = src, 2
            else:
                state -= int(self._back12[i][unit, state - 1])
        text = self._text[out[out >= 0]]
        if text.any():
            self.progress_word = max(self.progress_word, int(self._word[out[out >= 0][text]].max()))
        return out

    def forget_before(self, frame: int) -> None:
        """Drop what frames before ``frame`` hold (no path will be read or redone there)."""
        drop = min(frame - self.first_frame, len(self._delta) - 1)
        if drop > 0:
            del self._delta[:drop], self._back0[:drop], self._back12[:drop], self._loglik[:drop]
            self.first_frame += drop


def phone_bigram(phones: tuple[str, ...], pronunciations: list[list[str]], silence: str = "SIL") -> Matrix:
    """Log P(next phone | phone) over ``phones`` from a pronouncing dictionary: phone pairs
    inside words, and across word boundaries the word-initial distribution (words are
    independent); pauses follow a tenth of word ends. Add-one smoothed; fillers never follow."""
    index = {p: i for i, p in enumerate(phones)}
    n = len(phones)
    within = np.zeros((n, n))
    initial = np.zeros(n)
    final = np.zeros(n)
    for pron in pronunciations:
        ids = [index[p] for p in pron if p in index]
        if not ids:
            continue
        initial[ids[0]] += 1
        final[ids[-1]] += 1
        for a, b in itertools.pairwise(ids):
            within[a, b] += 1
    sil = index[silence]
    start = initial / initial.sum()
    counts = within + final[:, None] * 0.9 * start[None, :]
    counts[:, sil] += final * 0.1
    counts[sil] += start * max(final.sum(), 1.0) / n
    real = np.array([not p.startswith("+") for p in phones])
    counts += real[None, :]  # add one
    counts[:, ~real] = 0.0
    probs = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1e-12)
    log: Matrix = np.log(np.maximum(probs, 1e-12))
    return log
