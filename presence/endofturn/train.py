"""``python -m presence.endofturn.train``: rebuild the text model and the fusion weights.

1. Text: a sparse logistic regression (``text.features``) on Switchboard utterances from two
   calls in three: ends of complete slash units against the same units cut at a word and
   units that broke off.
2. Fusion: the remaining calls' speaker turns (1–3 utterances each) spoken by eSpeak NG with
   a random voice, rate and pitch per stream, half the utterances cut at a word for a
   mid-utterance pause, internal pauses log-uniform 150–1200 ms, 2 s after each turn, a noise
   floor under everything. Silero VAD and the real ``TurnTaker`` replay each stream; at every
   silent window of every pause the features the predictor would see are recorded with the
   truth (has the user finished an utterance?). The words are pocketsphinx's streaming
   partials at each silence onset, as the session gets them (``--words pocketsphinx``, the
   shipped weights), or the script's words with ASR-like damage: sometimes late, sometimes
   the last word lost or a word swapped (``--words oracle``; the bench's "script words" fusion:
   ``--words oracle --out presence/endofturn/weights/script-words``, keeping only fusion.json).
3. Threshold: the lowest at which ≤ 5 % of the held-out streams' mid-utterance pauses (the
   last fifth, not fitted) would be released into.

Never trains on the TIMIT evaluation sample. Deterministic for a given ``--seed``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
from scipy.optimize import minimize
from scipy.sparse import csr_matrix

from presence.audio.pcm import Float32
from presence.audio.prosody import PauseCue
from presence.audio.vad import WINDOW_SAMPLES, SileroVad
from presence.endofturn import predictor as fusion
from presence.endofturn.asr_replay import Transcript, asr_transcripts, silence_onsets
from presence.endofturn.corpus import (
    DEFAULT_SWITCHBOARD,
    Utterance,
    conversation_turns,
    random_voice,
    read_switchboard,
    speak,
    text_examples,
)
from presence.endofturn.predictor import FEATURES, PauseContext
from presence.endofturn.text import TextCompleteness, features
from presence.media import INPUT_SAMPLE_RATE
from presence.session.turns import TurnConfig, TurnTaker

RATE: Final = INPUT_SAMPLE_RATE
ATTRIBUTION: Final = (
    "Trained on text from the Switchboard corpus sample (TalkBank Switchboard Corpus 0.1; speech data "
    "and text transcription Copyright (C) 2000 University of Pennsylvania; annotations their authors'; "
    "Open Content License) and on speech synthesised by eSpeak NG. No TIMIT data."
)
COMMAND: Final = "python -m presence.endofturn.train"
MAX_SILENCE_S: Final = 1.6  # windows later than this in a pause teach nothing the fallback needs


def fit_logistic(x: Any, y: np.ndarray, l2: float, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """L2-regularised logistic regression (the first column is the unpenalised bias)."""
    n, d = x.shape
    sw = np.ones(n) if sample_weight is None else sample_weight
    sw = sw / sw.sum()
    mask = np.ones(d)
    mask[0] = 0.0

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = np.asarray(x @ w).ravel()
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
        ll = np.logaddexp(0.0, z) - y * z
        grad = np.asarray(x.T @ (sw * (p - y))).ravel() + l2 * mask * w
        return float(np.dot(sw, ll) + 0.5 * l2 * np.dot(mask * w, w)), grad

    result = minimize(loss, np.zeros(d), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return np.asarray(result.x)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (rank statistic; ties count half)."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):  # average the ranks of ties
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# ----------------------------------------------------------------------------- text


def train_text(
    utterances: list[Utterance], rng: np.random.Generator, min_count: int = 2
) -> tuple[dict[str, float], dict[str, Any]]:
    examples = text_examples(utterances, rng)
    rows = [features(list(tokens)) for tokens, _ in examples]
    counts = Counter(f for row in rows for f in row)
    vocab = {"bias": 0}
    for f, c in sorted(counts.items()):
        if c >= min_count and f != "bias":
            vocab[f] = len(vocab)
    indices = [[vocab[f] for f in row if f in vocab] for row in rows]
    data = np.ones(sum(len(i) for i in indices))
    indptr = np.cumsum([0] + [len(i) for i in indices])
    x = csr_matrix(
        (data, np.concatenate([np.asarray(i, dtype=np.int64) for i in indices]), indptr), shape=(len(rows), len(vocab))
    )
    y = np.asarray([label for _, label in examples], dtype=np.float64)
    w = fit_logistic(x, y, l2=1e-4)
    names = sorted(vocab, key=vocab.__getitem__)
    weights = {name: round(float(w[vocab[name]]), 3) for name in names if abs(w[vocab[name]]) >= 0.05 or name == "bias"}
    train_auc = auc(np.asarray(x @ w).ravel(), y)
    return weights, {
        "examples": len(examples),
        "positives": int(y.sum()),
        "features": len(weights),
        "train_auc": round(train_auc, 4),
    }


# ----------------------------------------------------------------------------- fusion corpus


@dataclass(slots=True)
class SpokenTurn:
    speech_start: int
    speech_end: int
    words_until: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)  # (end sample, words so far)
    yields: list[tuple[int, int]] = field(default_factory=list)  # pauses after a complete utterance (start, end)


@dataclass(frozen=True, slots=True)
class TrainingStream:
    audio: Float32
    turns: tuple[SpokenTurn, ...]


def build_stream(turns: list[list[Utterance]], rng: np.random.Generator) -> TrainingStream:
    """One eSpeak voice speaking ``turns`` with controlled pauses (see the module docstring)."""
    voice = random_voice(rng)
    noise_rms = 10 ** (rng.uniform(-70, -48) / 20)
    pieces: list[Float32] = []
    position = 0
    out: list[SpokenTurn] = []

    def silence(n: int) -> None:
        nonlocal position
        pieces.append(np.zeros(n, np.float32))
        position += n

    def pause() -> int:
        return int(math.exp(rng.uniform(math.log(0.15), math.log(1.2))) * RATE)

    silence(int(0.5 * RATE))
    for utterances in turns:
        turn = SpokenTurn(position, position)
        heard: tuple[str, ...] = ()
        for i, utt in enumerate(utterances):
            spoken = speak(utt.tokens, voice)
            if len(spoken.audio) == 0:
                continue
            cut = None
            inner = [k for k in range(2, len(spoken.word_starts) - 1)]
            if inner and rng.random() < 0.5:
                cut = inner[int(rng.integers(len(inner)))]
            parts = [(spoken.audio, utt.tokens)]
            if cut is not None and len(spoken.word_starts) == len(utt.tokens):
                at = spoken.word_starts[cut]
                parts = [(spoken.audio[:at], utt.tokens[:cut]), (spoken.audio[at:], utt.tokens[cut:])]
            for j, (audio, tokens) in enumerate(parts):
                pieces.append(audio.astype(np.float32))
                position += len(audio)
                heard = heard + tokens
                turn.words_until.append((position, heard))
                turn.speech_end = position
                complete = j == len(parts) - 1
                if not (i == len(utterances) - 1 and complete):
                    gap = pause()
                    if complete:
                        turn.yields.append((position, position + gap))
                    silence(gap)
        if turn.words_until:
            out.append(turn)
        silence(int(2.0 * RATE))
    audio = np.concatenate(pieces)
    audio = (audio + noise_rms * rng.standard_normal(len(audio))).astype(np.float32)
    return TrainingStream(audio, tuple(out))


@dataclass(slots=True)
class _Recorder:
    """A rule that never confirms and remembers what the predictor would have seen."""

    seen: list[tuple[int, PauseContext]] = field(default_factory=list)
    now: int = 0
    name: str = "recorder"
    uses_prosody: bool = True

    def confirm_after_ms(self, cue: PauseCue) -> float:
        return 1e9

    def confirm_early(self, context: PauseContext) -> bool:
        if context.silence_ms <= MAX_SILENCE_S * 1000:
            self.seen.append((self.now, context))
        return False


def _garble(tokens: tuple[str, ...], rng: np.random.Generator, vocabulary: list[str]) -> tuple[str, ...]:
    """ASR-like damage: the last word lost, or a word swapped for another."""
    roll = rng.random()
    if roll < 0.1 and len(tokens) > 1:
        return tokens[:-1]
    if roll < 0.25:
        k = int(rng.integers(len(tokens)))
        return (*tokens[:k], str(rng.choice(vocabulary)), *tokens[k + 1 :])
    return tokens


def oracle_words(
    stream: TrainingStream, onsets: list[int], rng: np.random.Generator, vocabulary: list[str]
) -> list[Transcript]:
    """The words spoken before each onset, with ASR-like damage and sometimes late."""
    out = []
    for onset in onsets:
        turn = next((u for u in stream.turns if u.speech_start <= onset < u.speech_end + RATE), None)
        heard = [w for end, w in turn.words_until if end <= onset + WINDOW_SAMPLES] if turn is not None else []
        if heard:
            lag = 0 if rng.random() < 0.6 else int(rng.uniform(0.0, 0.5) * RATE)
            out.append(Transcript(onset + WINDOW_SAMPLES + lag, onset, " ".join(_garble(heard[-1], rng, vocabulary))))
    return out


@dataclass(slots=True)
class Recorded:
    """Feature rows with their truth, and which pause (first silent sample, kind) each belongs to."""

    x: list[list[float]] = field(default_factory=list)
    y: list[int] = field(default_factory=list)
    pause: list[tuple[int, int, str]] = field(default_factory=list)  # (stream, silence start, kind)
    silence_ms: list[float] = field(default_factory=list)


def record(
    index: int,
    stream: TrainingStream,
    probs: np.ndarray,
    transcripts: list[Transcript],
    text: TextCompleteness,
    out: Recorded,
) -> None:
    """Replay one stream through the turn machine; features and truth at every pause window.

    Truth: 1 while the user has finished an utterance and is silent (the end of the turn, or a
    pause between complete utterances: a legitimate place to take the turn), 0 inside one.
    """
    recorder = _Recorder()
    taker = TurnTaker(TurnConfig(rule=recorder))
    ends = [(t.speech_end, stream.turns[k + 1].speech_start if k + 1 < len(stream.turns) else len(stream.audio))
            for k, t in enumerate(stream.turns)]  # fmt: skip
    yields = [span for t in stream.turns for span in t.yields]
    pending = sorted(transcripts, key=lambda tr: tr.ready_at)
    next_text = 0
    for i, prob in enumerate(probs):
        t = i * WINDOW_SAMPLES
        while next_text < len(pending) and pending[next_text].ready_at <= t + WINDOW_SAMPLES:
            taker.on_transcript(pending[next_text].text, pending[next_text].covers_until)
            next_text += 1
        recorder.now = t + WINDOW_SAMPLES
        before = len(recorder.seen)
        taker.on_vad(float(prob), t, WINDOW_SAMPLES, stream.audio[t : t + WINDOW_SAMPLES])
        for at, context in recorder.seen[before:]:
            start = at - WINDOW_SAMPLES
            kind = (
                "end"
                if any(a <= start < b for a, b in ends)
                else "yield"
                if any(a <= start < b for a, b in yields)
                else "inside"
            )
            out.x.append(fusion.vector(context, None if context.transcript is None else text.logit(context.transcript)))
            out.y.append(int(kind != "inside"))
            out.pause.append((index, at - round(context.silence_ms * RATE / 1000), kind))
            out.silence_ms.append(context.silence_ms)


def choose_threshold(p: np.ndarray, held: Recorded, max_inside: float = 0.05) -> tuple[float, dict[str, Any]]:
    """The lowest threshold at which ≤ ``max_inside`` of the held-out pauses inside an utterance
    would be released into, and what it does at turn ends there."""
    groups: dict[tuple[int, int], list[int]] = {}
    for row, (stream, start, _) in enumerate(held.pause):
        groups.setdefault((stream, start), []).append(row)
    kinds = {key: held.pause[rows[0]][2] for key, rows in groups.items()}
    inside = [rows for key, rows in groups.items() if kinds[key] == "inside" and held.silence_ms[rows[-1]] >= 150]
    ends = [rows for key, rows in groups.items() if kinds[key] == "end"]
    best: tuple[float, dict[str, Any]] = (0.99, {})
    for threshold in np.round(np.arange(0.99, 0.3, -0.01), 2):
        cut = float(np.mean([bool(np.any(p[rows] >= threshold)) for rows in inside])) if inside else 0.0
        if cut > max_inside:
            break
        delays = [next((held.silence_ms[r] for r in rows if p[r] >= threshold), np.inf) for rows in ends]
        finite = [d for d in delays if np.isfinite(d)]
        best = (
            float(threshold),
            {
                "inside_pauses_cut": round(cut, 4),
                "inside_pauses": len(inside),
                "turn_ends": len(ends),
                "confirmed_within_1600_ms": round(len(finite) / max(len(ends), 1), 3),
                "confirm_silence_p50_ms": float(np.median(finite)) if finite else None,
            },
        )
    return best


def train(args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed)
    utterances = read_switchboard(args.switchboard)
    calls = sorted({u.call for u in utterances})
    if args.tiny:
        calls = calls[:6]
    fusion_calls = set(calls[2::3])
    text_model, text_stats = train_text([u for u in utterances if u.call in set(calls) - fusion_calls], rng)
    text = TextCompleteness(text_model)

    turns = [t[:3] for t in conversation_turns([u for u in utterances if u.call in fusion_calls])]
    turns = [t for t in turns if sum(len(u.tokens) for u in t) >= 4]
    order = rng.permutation(len(turns))
    per_stream = 6
    n_streams = min(args.streams, len(turns) // per_stream)
    n_held = max(1, n_streams // 5)  # the last fifth chooses the threshold, unseen by the fit
    vocabulary = sorted({w for u in utterances for w in u.tokens})
    vad = SileroVad()
    fit, held = Recorded(), Recorded()
    for s in range(n_streams):
        chosen = [turns[int(k)] for k in order[s * per_stream : (s + 1) * per_stream]]
        stream = build_stream(chosen, rng)
        vad.reset()
        n = len(stream.audio) // WINDOW_SAMPLES
        probs = np.asarray(
            [vad.probability(stream.audio[i * WINDOW_SAMPLES : (i + 1) * WINDOW_SAMPLES]) for i in range(n)]
        )
        onsets = silence_onsets(probs, TurnConfig())
        if args.words == "pocketsphinx":
            transcripts, _ = asr_transcripts(stream.audio, stream.turns, onsets)
        else:
            transcripts = oracle_words(stream, onsets, rng, vocabulary)
        record(s, stream, probs, transcripts, text, held if s >= n_streams - n_held else fit)
    x_arr, y_arr = np.asarray(fit.x), np.asarray(fit.y, dtype=np.float64)
    w = fit_logistic(x_arr, y_arr, l2=1e-3)
    held_p = 1.0 / (1.0 + np.exp(-np.asarray(held.x) @ w))
    threshold, validation = choose_threshold(held_p, held)
    stats = {
        "words": args.words,
        "streams": n_streams,
        "held_out_streams": n_held,
        "windows": len(fit.y),
        "done_windows": int(y_arr.sum()),
        "train_auc": round(auc(x_arr @ w, y_arr), 4),
        "held_out_auc": round(auc(held_p, np.asarray(held.y)), 4),
        "held_out_at_threshold": validation,
    }
    return {
        "text": {"weights": text_model, "stats": text_stats},
        "fusion": {
            "weights": {name: round(float(v), 4) for name, v in zip(FEATURES, w, strict=True)},
            "threshold": threshold,
            "stats": stats,
        },
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=COMMAND, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--switchboard", type=Path, default=DEFAULT_SWITCHBOARD, help="the Switchboard sample folder")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("weights"), help="where text.json and fusion.json go"
    )
    parser.add_argument("--streams", type=int, default=60, help="eSpeak streams for the fusion (6 turns each)")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--tiny", action="store_true", help="six calls, for a smoke test")
    parser.add_argument(
        "--words",
        choices=["pocketsphinx", "oracle"],
        default="pocketsphinx",
        help="the transcripts the fusion learns from: the local ASR's partials, or the script's words",
    )
    args = parser.parse_args(argv)
    trained = train(args)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in ("text", "fusion"):
        part = trained[name]
        command = f"{COMMAND} --seed {args.seed} --streams {args.streams} --words {args.words}"
        doc = {"command": command + (" --tiny" if args.tiny else ""), "attribution": ATTRIBUTION,
               "stats": part["stats"], **{k: v for k, v in part.items() if k != "stats"}}  # fmt: skip
        (args.out / f"{name}.json").write_text(json.dumps(doc, indent=0, sort_keys=False) + "\n")
        print(f"{name}: {part['stats']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
