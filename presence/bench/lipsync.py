"""``presence bench lipsync``: audio-driven lip-sync scored on real speech with phone alignments.

Every estimator runs on the same utterances (default: the TIMIT sample in ../shared/data;
any folder of ``<speaker>/<utt>.wav`` with TIMIT-style ``.phn`` files works) and is scored
as design/VISEMES.md defines (see ``presence.lipsync.scoring``). Streaming estimators are
fed 20 ms chunks through the Animator protocol; each row reports the look-ahead it needs
(audio after a frame's centre that its weights depend on) and its CPU time per second of
audio. The reference-phones row feeds the true phones to PhonemeAnimator: an upper bound
for phoneme-driven lip-sync, not an audio estimator.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from presence.audio.pcm import Float32, float_to_s16le, resample
from presence.audio.wavfile import read_audio
from presence.bench._stats import summary, table, write_results
from presence.lipsync.acoustic import AudioAnimator
from presence.lipsync.audio import MlpAnimator, load_model
from presence.lipsync.base import VISEME_INDEX, VISEMES, Animator, EnergyAnimator, rest_weights
from presence.lipsync.phonemes import PhonemeAnimator
from presence.lipsync.phones import ARPABET_TO_VISEME, TIMIT_TO_ARPABET
from presence.lipsync.scoring import (
    COARSE_INDEX,
    FRAME_MS,
    PhoneSegment,
    Utterance,
    frame_count,
    majority_share,
    read_phn,
    reference_labels,
    score,
)
from presence.lipsync.sphinx_am import packaged_acoustic_model
from presence.media import AudioChunk, PhonemeMark

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = Path(os.environ.get("PRESENCE_DATA_DIR", REPO / ".." / "shared" / "data")) / "timit-sample"
DOCS = REPO / "docs" / "benchmarks"
CHUNK_MS = 20
QUICK_UTTERANCES = 8
ESPEAK_UTTERANCES = 30
QUICK_ESPEAK_UTTERANCES = 4
OFFLINE = 10**9  # "look-ahead" that reaches the end of every utterance: the final hypothesis
REPRODUCE = "python -m presence.cli bench lipsync --json docs/benchmarks/lipsync.json --md docs/benchmarks/lipsync.md"
Weights = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Recording:
    name: str
    audio: Float32
    sample_rate: int
    phones: list[PhoneSegment]
    text: str = ""  # what is said (<utt>.txt), when the folder has it
    words: tuple[PhoneSegment, ...] = ()  # word alignment (<utt>.wrd), when the folder has it

    @property
    def frames(self) -> int:
        return frame_count(len(self.audio), self.sample_rate)


@dataclass(frozen=True, slots=True)
class Estimate:
    weights: list[Weights]  # per recording: frames × 15 at frame centres
    lookahead_ms: float
    cpu_s: float
    notes: str = ""


def load_corpus(folder: Path) -> list[Recording]:
    if not folder.is_dir():
        raise SystemExit(f"lip-sync evaluation data not found: {folder} (pass --data or set PRESENCE_DATA_DIR)")
    recordings = []
    for wav_path in sorted(folder.glob("*/*.wav")):
        phn = wav_path.with_suffix(".phn")
        if not phn.exists():
            continue
        audio, rate = read_audio(wav_path)
        text, words = read_words(wav_path)
        recordings.append(Recording(f"{wav_path.parent.name}/{wav_path.stem}", audio, rate, read_phn(phn), text, words))
    if not recordings:
        raise SystemExit(f"no <speaker>/<utt>.wav with a .phn beside it under {folder}")
    return recordings


def read_words(wav_path: Path) -> tuple[str, tuple[PhoneSegment, ...]]:
    """The utterance's text (TIMIT ``.txt``: ``start end text``, or plain text) and its word
    segments (``.wrd``, same format as ``.phn``); empty when the folder has neither."""
    txt, wrd = wav_path.with_suffix(".txt"), wav_path.with_suffix(".wrd")
    words = tuple(read_phn(wrd)) if wrd.exists() else ()
    text = ""
    if txt.exists():
        parts = txt.read_text(errors="replace").split()
        if len(parts) > 2 and parts[0].isdigit() and parts[1].isdigit():
            parts = parts[2:]
        text = " ".join(parts)
    elif words:
        text = " ".join(w.phone for w in words)
    return text, words


def stream_animator(make: Callable[[int], Animator], rec: Recording, marks: list[PhonemeMark] | None = None) -> Weights:
    """Feed 20 ms chunks (with the ``marks`` that fall inside each, offsets made chunk-relative);
    frames land on frame centres because the timeline starts half a frame in."""
    rate = rec.sample_rate
    frame = rate * FRAME_MS // 1000
    animator = make(rate)
    offset = frame // 2  # timeline sample of audio sample 0
    out = np.tile(rest_weights(), (rec.frames, 1))
    chunk = rate * CHUNK_MS // 1000
    frames = []
    for start in range(0, len(rec.audio), chunk):
        inside = tuple(
            PhonemeMark(m.offset_samples - start, m.phoneme, m.alphabet)
            for m in marks or ()
            if start <= m.offset_samples < start + chunk
        )
        piece = AudioChunk(0, rec.audio[start : start + chunk], rate, inside)
        frames += animator.push(piece, offset + start)
    frames += animator.flush()
    for f in frames:
        k, rem = divmod(f.t_samples - offset - frame // 2, frame)
        if rem == 0 and 0 <= k < rec.frames:
            out[k] = f.weights
    return out


def run_animator(make: Callable[[int], Animator], recordings: list[Recording], notes: str = "") -> Estimate:
    started = time.process_time()
    weights = [stream_animator(make, r) for r in recordings]
    cpu = time.process_time() - started
    lookahead = make(recordings[0].sample_rate).lookahead_samples * 1000 / recordings[0].sample_rate
    return Estimate(weights, lookahead, cpu, notes)


def reference_phone_marks(rec: Recording) -> list[PhonemeMark]:
    """True phones as ARPAbet marks placed like eSpeak's: a stop's closure merges into its burst."""
    marks: list[PhonemeMark] = []
    phones = rec.phones
    for i, seg in enumerate(phones):
        if seg.phone.endswith("cl") and i + 1 < len(phones) and phones[i + 1].phone == seg.phone[:-2]:
            continue  # the burst's mark carries it, and the animator closes the lips before it
        arpabet = TIMIT_TO_ARPABET.get(seg.phone, seg.phone.upper())
        marks.append(PhonemeMark(seg.start_sample, arpabet or "SIL", "arpabet"))
    return marks


def run_reference_phones(recordings: list[Recording], holdback_ms: float = 0.0) -> Estimate:
    def make(rate: int) -> Animator:
        return PhonemeAnimator(rate, fps=1000 // FRAME_MS, holdback_ms=holdback_ms)

    started = time.process_time()
    weights = [stream_animator(make, rec, reference_phone_marks(rec)) for rec in recordings]
    notes = "true phones as marks; not from audio"
    return Estimate(weights, holdback_ms, time.process_time() - started, notes)


def one_hot(labels: npt.NDArray[np.int64]) -> Weights:
    out = np.zeros((len(labels), len(VISEMES)), dtype=np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    return out


def pocketsphinx_runs(
    recordings: list[Recording], lookaheads_ms: tuple[int, ...]
) -> tuple[dict[int, Estimate], list[float]]:
    """Streaming allphone decoding, 10 ms at a time; frame k is labelled with the hypothesis
    available once audio up to its end plus the look-ahead has been decoded. Also returns, per
    phone of the final hypothesis, how long after the phone's end its label stopped changing."""
    import pocketsphinx

    model = Path(pocketsphinx.__file__).parent / "model" / "en-us"
    decoder = pocketsphinx.Decoder(
        hmm=str(model / "en-us"), allphone=str(model / "en-us-phone.lm.bin"), lm=None,
        beam=1e-20, pbeam=1e-20, lw=2.0, logfn=os.devnull,
    )  # fmt: skip
    silence = VISEME_INDEX["sil"]
    labels_by: dict[int, list[npt.NDArray[np.int64]]] = {la: [] for la in lookaheads_ms}
    settle_ms: list[float] = []
    started = time.process_time()
    for rec in recordings:
        audio = rec.audio if rec.sample_rate == 16000 else resample(rec.audio, rec.sample_rate, 16000)
        pcm = float_to_s16le(audio)
        n = frame_count(len(audio), 16000)
        history = np.full((n + 1, n), silence, dtype=np.int64)  # history[b]: labels after b blocks
        decoder.start_utt()
        for b in range(1, n + 1):
            decoder.process_raw(pcm[(b - 1) * 320 : b * 320], False, False)
            history[b] = _segment_labels(decoder.seg(), n, carry=True)
        decoder.end_utt()
        final = _segment_labels(decoder.seg(), n, carry=True)
        for la in lookaheads_ms:
            block = np.minimum(np.arange(n) + 1 + la // FRAME_MS, n)
            labels_by[la].append(np.where(block >= n, final, history[block, np.arange(n)]))
        changed = history != final[None, :]
        last_change = np.where(changed.any(axis=0), n - np.argmax(changed[::-1], axis=0), 0)
        for seg in decoder.seg() or ():
            lo, hi = max(seg.start_frame, 0), min(seg.end_frame + 1, n)
            if hi > lo:
                settle_ms.append(float((last_change[lo:hi].max() - hi) * FRAME_MS))
    cpu = time.process_time() - started
    estimates = {
        la: Estimate(
            [one_hot(lab) for lab in labels_by[la]],
            la if la != OFFLINE else float("inf"),
            cpu,
            "allphone, en-us phone LM",
        )
        for la in lookaheads_ms
    }
    return estimates, settle_ms


def _segment_labels(segments: Any, n: int, carry: bool) -> npt.NDArray[np.int64]:
    labels = np.full(n, VISEME_INDEX["sil"], dtype=np.int64)
    last_end, last_label = 0, VISEME_INDEX["sil"]
    for seg in segments or ():  # no hypothesis yet: None
        viseme = ARPABET_TO_VISEME.get(str(seg.word).upper(), "sil")  # fillers (+NSN+ ...) are silence
        lo, hi = max(seg.start_frame, 0), min(seg.end_frame + 1, n)
        labels[lo:hi] = VISEME_INDEX[viseme]
        last_end, last_label = max(last_end, hi), VISEME_INDEX[viseme]
    if carry:
        labels[last_end:] = last_label  # frames not yet hypothesised keep the newest phone
    return labels


def run_pylipsync(recordings: list[Recording]) -> Estimate:
    """uLipSync's port: 64 ms MFCC windows centred on each 10 ms frame, so 32 ms look-ahead."""
    from pylipsync import PhonemeAnalyzer

    to_viseme = {"aa": "aa", "ee": "E", "ih": "ih", "oh": "oh", "ou": "ou", "silence": "sil"}
    analyzer = PhonemeAnalyzer()
    started = time.process_time()
    weights = []
    for rec in recordings:
        audio = rec.audio if rec.sample_rate == 16000 else resample(rec.audio, rec.sample_rate, 16000)
        segments = analyzer.extract_phoneme_segments(audio, 16000, window_size_ms=64.0, fps=1000 // FRAME_MS)
        out = np.zeros((rec.frames, len(VISEMES)), dtype=np.float32)
        for k, seg in enumerate(segments[: rec.frames]):
            for phoneme in seg.phonemes:
                out[k, VISEME_INDEX[to_viseme[phoneme.name]]] = phoneme.target
        weights.append(np.clip(np.nan_to_num(out), 0.0, 1.0))
    return Estimate(weights, 32.0, time.process_time() - started, "MFCC templates: vowels and silence only")


def evaluate(recordings: list[Recording], fuse: bool = True) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every estimator's row; ``fuse``: also the decoder with eSpeak-trained MLPs in its scores."""
    references = [reference_labels(r.phones, r.frames, r.sample_rate) for r in recordings]
    audio_s = sum(len(r.audio) / r.sample_rate for r in recordings)
    estimates: dict[str, Estimate] = {}
    estimates["energy (baseline)"] = run_animator(lambda rate: EnergyAnimator(rate, fps=100), recordings)
    sphinx, settle = pocketsphinx_runs(recordings, (0, 30, 110, OFFLINE))
    estimates["pocketsphinx allphone, causal"] = sphinx[0]
    estimates["pocketsphinx allphone, 30 ms look-ahead"] = sphinx[30]
    estimates["pocketsphinx allphone, 110 ms look-ahead"] = sphinx[110]
    estimates["pocketsphinx allphone, whole utterance (offline)"] = sphinx[OFFLINE]
    estimates["pylipsync (uLipSync port)"] = run_pylipsync(recordings)
    estimates.update(audio_estimators(recordings))
    from presence.bench.lipsync_aligned import aligned_estimators  # imports this module

    with_text = all(r.text for r in recordings)
    estimates.update(aligned_estimators(recordings, packaged_acoustic_model(), with_text, fuse))
    estimates["reference phones → PhonemeAnimator"] = run_reference_phones(recordings)
    estimates["reference phones → PhonemeAnimator, 50 ms holdback"] = run_reference_phones(recordings, 50.0)
    rows = [_row(name, est, references, audio_s) for name, est in estimates.items()]
    meta = {
        "utterances": len(recordings),
        "audio_s": round(audio_s, 1),
        "frames": int(sum(len(r) for r in references)),
        "majority_share": majority_share([Utterance(r, one_hot(r)) for r in references]),
        "majority_share_coarse": majority_share([Utterance(COARSE_INDEX[r], one_hot(r)) for r in references]),
        "pocketsphinx_settle_ms_after_phone_end": summary(settle, digits=1),
        "transcripts": with_text,
    }
    return rows, meta


def audio_estimators(recordings: list[Recording]) -> dict[str, Estimate]:
    """The product's audio-driven animator and the eSpeak-trained MLP it falls back on."""
    acoustic = packaged_acoustic_model()
    mlp = load_model()
    return {
        "AudioAnimator (pocketsphinx acoustic model, no decoder)": run_animator(
            lambda rate: AudioAnimator(rate, fps=100, model=acoustic), recordings, "CI phone posteriors, numpy"
        ),
        "MlpAnimator (log-mel MLP trained on eSpeak)": run_animator(
            lambda rate: MlpAnimator(rate, fps=100, model=mlp), recordings, "fallback without pocketsphinx"
        ),
    }


def espeak_corpus(
    count: int, seed: int = 5
) -> tuple[list[Recording], list[list[PhonemeMark]], list[npt.NDArray[np.int64]]]:
    """Seeded eSpeak NG sentences at 16 kHz, labelled from eSpeak's own phoneme events (the
    trainer's convention: a stop's closure belongs to the stop), with the events as marks."""
    from presence.audio.espeak import Espeak, Voice
    from presence.lipsync.train import frame_labels, load_words, sentence

    rng = np.random.default_rng(seed)
    words = load_words()
    recordings: list[Recording] = []
    marks: list[list[PhonemeMark]] = []
    references: list[npt.NDArray[np.int64]] = []
    for i in range(count):
        voice = Voice("en-us", rate_wpm=int(rng.integers(140, 230)), pitch=int(rng.integers(30, 70)))
        speech = Espeak.instance().synthesize(sentence(rng, words), voice)
        audio = resample(speech.samples, speech.sample_rate, 16000)
        offsets = [round(p.offset * 16000 / speech.sample_rate) for p in speech.phonemes]
        symbols = [p.symbol for p in speech.phonemes]
        # Row j of frame_labels is centred on sample j*160; scoring frames are centred 80 later.
        labels = frame_labels([o - 80 for o in offsets], symbols, len(audio) - 80, 16000)
        recordings.append(Recording(f"espeak/{i}", audio, 16000, []))
        marks.append([PhonemeMark(o, sym) for o, sym in zip(offsets, symbols, strict=True)])
        references.append(labels[: recordings[-1].frames])
    return recordings, marks, references


def evaluate_espeak(count: int) -> list[dict[str, Any]]:
    """Sanity: animators on eSpeak speech against eSpeak's own phoneme events."""
    recordings, marks, references = espeak_corpus(count)
    acoustic = packaged_acoustic_model()
    started = time.process_time()
    phonemes = [
        stream_animator(lambda rate: PhonemeAnimator(rate, fps=100), rec, m)
        for rec, m in zip(recordings, marks, strict=True)
    ]
    cpu = time.process_time() - started
    estimates = {
        "PhonemeAnimator (eSpeak's events)": Estimate(phonemes, 0.0, cpu, "marks at eSpeak's event samples"),
        "AudioAnimator": run_animator(lambda rate: AudioAnimator(rate, fps=100, model=acoustic), recordings),
        "MlpAnimator (trained on eSpeak)": run_animator(lambda rate: MlpAnimator(rate, fps=100), recordings),
    }
    audio_s = sum(len(r.audio) / r.sample_rate for r in recordings)
    return [_row(name, est, references, audio_s) for name, est in estimates.items()]


def _row(name: str, est: Estimate, references: list[npt.NDArray[np.int64]], audio_s: float) -> dict[str, Any]:
    s = score([Utterance(ref, w) for ref, w in zip(references, est.weights, strict=True)])
    return {
        "estimator": name, "agreement15": s.agreement15, "agreement_coarse": s.agreement_coarse,
        "closed_recall": s.closed_recall, "closed_precision": s.closed_precision,
        "openness_r": s.openness_r, "best_shift_ms": s.best_shift_ms,
        "agreement15_best": s.agreement15_at_best_shift, "lookahead_ms": est.lookahead_ms,
        "cpu_pct_of_core": 100.0 * est.cpu_s / audio_s, "notes": est.notes,
    }  # fmt: skip


COLUMNS = [
    ("estimator", "estimator"),
    ("agreement15", "15-viseme agreement"),
    ("agreement_coarse", "coarse agreement"),
    ("closed_recall", "closed recall"),
    ("closed_precision", "closed precision"),
    ("openness_r", "openness r"),
    ("best_shift_ms", "best shift ms"),
    ("lookahead_ms", "look-ahead ms"),
    ("cpu_pct_of_core", "CPU % of a core"),
    ("notes", "notes"),
]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="presence bench lipsync", description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"the first {QUICK_UTTERANCES} utterances (CI)")
    parser.add_argument("--json", help="write results as JSON here")
    parser.add_argument("--md", type=Path, help="write the Markdown report here (full runs: docs/benchmarks)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of <speaker>/<utt>.wav + .phn")
    args = parser.parse_args(argv)
    recordings = load_corpus(args.data.resolve())
    if args.quick:
        recordings = recordings[:QUICK_UTTERANCES]
    rows, meta = evaluate(recordings, fuse=not args.quick)
    espeak_rows = evaluate_espeak(QUICK_ESPEAK_UTTERANCES if args.quick else ESPEAK_UTTERANCES)
    settle = meta["pocketsphinx_settle_ms_after_phone_end"]
    markdown = "\n".join([
        "# Lip-sync on real speech",
        "",
        f"{meta['utterances']} utterances, {meta['audio_s']} s, {meta['frames']} frames of {FRAME_MS} ms "
        f"from `{args.data.name}`; scored per design/VISEMES.md. Majority class: {meta['majority_share']:.1%} "
        f"(coarse: {meta['majority_share_coarse']:.1%}).",
        "Best shift: the estimate delay (ms) that maximises 15-viseme agreement (positive: late).",
        f"pocketsphinx phone labels settle {settle['p50']} ms (median) / p95 {settle['p95']} ms after the phone ends.",
        "",
        table(rows, COLUMNS),
        "",
        "pylipsync runs with the vowel profile its package ships (one voice; uLipSync's per-speaker",
        "calibration would need the test speakers' own vowels) and knows only aa/ee/ih/oh/ou/silence.",
        "",
        "`AlignedAnimator` rows (the product's default for Gemini and OpenAI is the one with text):",
        "the audio-only sweep reads each frame's phone L ms behind the newest audio; the text rows give",
        "the utterance's words (`.txt`, word times from `.wrd`) up front, or degraded (every tenth word",
        "of the corpus dropped or changed, in turn). Arrival-timed rows simulate the session: audio in",
        "the Gemini fake's 40 ms chunks, all at once (faster than real time, as the fake and the service",
        "send it) or at real time, pushed while less than 1 s ahead of playback, the animator polled",
        "every 32 ms, text handed to it on arrival; a frame leaves when playback comes within 40 ms of",
        "it (without text, already once the audio reaches 250 ms past it), never with less than 30 ms",
        "of audio after it. Their look-ahead column is the median effective look-ahead; notes give its",
        "spread. CPU is measured at 100 frames/s (the product animates at 60). Rows ending in `+ log-mel MLP`",
        "add to the decoder's phone scores an eSpeak-trained MLP's viseme log-probabilities (not the",
        "default; weights for the loop / the text by the equal-spread rule on eSpeak speech, docs/lipsync.md)."
        + ("" if meta["transcripts"] else " (This folder has no `.txt` transcripts: the text rows are skipped.)"),
        "",
        "## Sanity check on eSpeak NG speech",
        "",
        f"{QUICK_ESPEAK_UTTERANCES if args.quick else ESPEAK_UTTERANCES} "
        "seeded en-us sentences, scored against eSpeak's own phoneme events (a stop's closure counts as the stop). "
        "The MLP was trained on this kind of speech (other sentences), so its row is in-domain.",
        "",
        table(espeak_rows, COLUMNS),
        "",
        f"Reproduce: `{REPRODUCE}`",
        "",
    ])  # fmt: skip
    write_results({"meta": meta, "rows": rows, "espeak_rows": espeak_rows}, markdown, args.json, args.md)
    return 0
