"""``python -m presence.endofturn.train``: rebuild the text model and the fusion weights.

1. Text: a sparse logistic regression (``text.features``) on Switchboard utterances from two
   calls in three: ends of complete slash units against the same units cut at a word and
   units that broke off.
2. Fusion: the remaining calls' speaker turns (1–3 utterances each) spoken by eSpeak NG with
   a random voice, rate and pitch per stream, half the utterances cut at a word for a
   mid-utterance pause, internal pauses log-uniform 150–1500 ms, 2 s after each turn, a noise
   floor under everything. Silero VAD and the real ``TurnTaker`` replay each stream; at every
   silent window of every pause the features the predictor would see are recorded with the
   truth (has the turn ended?). The words are the oracle's, with the ASR's troubles imitated:
   sometimes late (unknown for a while), sometimes missing or wrong at the last word.

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
from presence.engines.base import INPUT_SAMPLE_RATE
from presence.session.turns import Signal, TurnConfig, TurnTaker

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


def record(
    stream: TrainingStream, probs: np.ndarray, text: TextCompleteness, rng: np.random.Generator, vocabulary: list[str]
) -> tuple[list[list[float]], list[int]]:
    """Replay one stream through the turn machine; features and truth at every pause window."""
    recorder = _Recorder()
    taker = TurnTaker(TurnConfig(rule=recorder))
    ends = [(t.speech_end, stream.turns[k + 1].speech_start if k + 1 < len(stream.turns) else len(stream.audio))
            for k, t in enumerate(stream.turns)]  # fmt: skip
    ends += [span for t in stream.turns for span in t.yields]
    pending: list[tuple[int, str, int]] = []  # (deliver at, words, covers until)
    xs: list[list[float]] = []
    ys: list[int] = []
    for i, prob in enumerate(probs):
        t = i * WINDOW_SAMPLES
        for item in [p for p in pending if p[0] <= t]:
            taker.on_transcript(item[1], item[2])
            pending.remove(item)
        recorder.now = t + WINDOW_SAMPLES
        before = len(recorder.seen)
        for tr in taker.on_vad(float(prob), t, WINDOW_SAMPLES, stream.audio[t : t + WINDOW_SAMPLES]):
            if tr.signal is Signal.SILENCE:
                turn = next((u for u in stream.turns if u.speech_start <= tr.t_samples < u.speech_end + RATE), None)
                if turn is None:
                    continue
                heard = [w for end, w in turn.words_until if end <= tr.t_samples + WINDOW_SAMPLES]
                if not heard:
                    continue
                tokens = _garble(heard[-1], rng, vocabulary)
                lag = 0 if rng.random() < 0.6 else int(rng.uniform(0.0, 0.5) * RATE)
                pending.append((tr.t_samples + lag, " ".join(tokens), tr.t_samples))
        for at, context in recorder.seen[before:]:
            xs.append(fusion.vector(context, None if context.transcript is None else text.logit(context.transcript)))
            ys.append(int(any(a <= at - WINDOW_SAMPLES < b for a, b in ends)))
    return xs, ys


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
    vocabulary = sorted({w for u in utterances for w in u.tokens})
    vad = SileroVad()
    xs: list[list[float]] = []
    ys: list[int] = []
    for s in range(n_streams):
        chosen = [turns[int(k)] for k in order[s * per_stream : (s + 1) * per_stream]]
        stream = build_stream(chosen, rng)
        vad.reset()
        n = len(stream.audio) // WINDOW_SAMPLES
        probs = np.asarray(
            [vad.probability(stream.audio[i * WINDOW_SAMPLES : (i + 1) * WINDOW_SAMPLES]) for i in range(n)]
        )
        x, y = record(stream, probs, text, rng, vocabulary)
        xs += x
        ys += y
    x_arr, y_arr = np.asarray(xs), np.asarray(ys, dtype=np.float64)
    w = fit_logistic(x_arr, y_arr, l2=1e-3)
    fusion_auc = auc(x_arr @ w, y_arr)
    stats = {
        "streams": n_streams,
        "windows": len(ys),
        "done_windows": int(y_arr.sum()),
        "train_auc": round(fusion_auc, 4),
    }
    return {
        "text": {"weights": text_model, "stats": text_stats},
        "fusion": {"weights": {name: round(float(v), 4) for name, v in zip(FEATURES, w, strict=True)}, "stats": stats},
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
    args = parser.parse_args(argv)
    trained = train(args)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in ("text", "fusion"):
        part = trained[name]
        doc = {"command": f"{COMMAND} --seed {args.seed} --streams {args.streams}" + (" --tiny" if args.tiny else ""),
               "attribution": ATTRIBUTION, "stats": part["stats"], "weights": part["weights"]}  # fmt: skip
        (args.out / f"{name}.json").write_text(json.dumps(doc, indent=0, sort_keys=False) + "\n")
        print(f"{name}: {part['stats']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
