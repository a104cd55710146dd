"""Train the audio-driven viseme model on eSpeak NG speech: ``python -m presence.lipsync.train``.

Training speech is synthesized, so every phoneme's timing is known: random word sequences
(common function words mixed with words from pocketsphinx's CMU dictionary) spoken by
several English voices and variants at random rates and pitches, then resampled to a
random output rate, filtered with a random spectral tilt, scaled to a random level and
mixed with white, pink or brown noise at a random SNR. Labels follow the reference
convention (design/VISEMES.md): a stop's closure, which eSpeak places before the stop's
burst event, is labelled with the stop. Everything is seeded; no recorded speech, and in
particular nothing from the TIMIT evaluation sample, is used.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

from presence.audio.espeak import Espeak, Voice
from presence.audio.pcm import resample
from presence.lipsync.audio import DECODER_MODEL_FILE, MODEL_FILE, AudioModel, model_path, stack_context
from presence.lipsync.base import VISEME_INDEX, VISEMES
from presence.lipsync.features import HOP_MS, N_FEATURES, N_MELS, features_of
from presence.lipsync.phones import SILENCE, espeak_shape

VOICES = ("en-us", "en", "en-GB-x-rp", "en-029", "en-GB-scotland", "en-US-nyc", "en-GB-x-gbclan", "en-GB-x-gbcwmd")
VARIANTS = (
    *("", "+f1", "+f2", "+f3", "+f4", "+f5", "+m1", "+m2", "+m3", "+m4", "+m5", "+m6", "+m7", "+m8"),
    *("+klatt", "+klatt2", "+klatt3", "+klatt4", "+klatt6", "+belinda", "+benjamin", "+john", "+linda"),
    *("+david", "+steph", "+robert", "+paul", "+ian", "+edward", "+grandma", "+grandpa", "+announcer"),
)
RATES_HZ = (16000, 22050, 24000, 48000)
OFFSETS = (-12, -9, -6, -4, -3, -2, -1, 0, 1)
#: Context of the decoder's model (``--for-decoder``): the decoder reads frame t once the
#: pocketsphinx features up to t+3 are in, so three rows of future context cost no delay.
DECODER_OFFSETS = (-12, -9, -6, -4, -3, -2, -1, 0, 1, 2, 3)
CLOSURE_MS = 45.0
DROPOUT = 0.2
INPUT_NOISE = 0.2
MAX_MASKED_BANDS = 5
_FUNCTION_WORDS_TEXT = """
the a an and or but of to in on at by for with from as is are was were be been it its this that
these those he she they we you i me him her them us my your our their not no yes so if then than
when where what who why how all some any one two three do does did have has had will would can
could should may might must there here very just only also about over under after before again more
most much many
"""
FUNCTION_WORDS = tuple(_FUNCTION_WORDS_TEXT.split())


def load_words() -> list[str]:
    import pocketsphinx

    dictionary = Path(pocketsphinx.__file__).parent / "model" / "en-us" / "cmudict-en-us.dict"
    words = []
    for line in dictionary.read_text(encoding="utf-8", errors="replace").splitlines():
        word = line.split(" ", 1)[0]
        if word.isalpha() and 2 <= len(word) <= 12:
            words.append(word)
    return words


def sentence(rng: np.random.Generator, words: list[str]) -> str:
    parts = []
    for _ in range(int(rng.integers(4, 13))):
        pool = FUNCTION_WORDS if rng.random() < 0.4 else words
        parts.append(pool[int(rng.integers(len(pool)))])
        if rng.random() < 0.08:
            parts[-1] += str(rng.choice([",", ".", "?", ";"]))
    return " ".join(parts) + "."


def frame_labels(offsets: list[int], symbols: list[str], n_samples: int, rate: int) -> npt.NDArray[np.int64]:
    """Viseme per 10 ms row centre from eSpeak's phoneme events (stops take their closure)."""
    starts: list[int] = []
    visemes: list[int] = []
    closure = round(CLOSURE_MS * rate / 1000)
    previous: tuple[int, str] | None = None
    for offset, symbol in zip(offsets, symbols, strict=True):
        shape = espeak_shape(symbol)
        if shape is None:
            continue
        start = offset
        if shape.stop:
            floor = (
                0 if previous is None else previous[0] + (0 if previous[1] == SILENCE else 0.4 * (offset - previous[0]))
            )
            start = max(offset - closure, int(np.ceil(floor)), starts[-1] if starts else 0)
        starts.append(start)
        visemes.append(VISEME_INDEX[shape.onset])
        previous = (offset, shape.onset)
    hop = round(rate * HOP_MS / 1000)
    centres = np.arange(-(-n_samples // hop)) * hop
    index = np.searchsorted(np.asarray(starts), centres, side="right") - 1
    labels = np.where(index >= 0, np.asarray([*visemes, 0])[np.maximum(index, 0)], VISEME_INDEX[SILENCE])
    return labels.astype(np.int64)


def noise(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    white = rng.standard_normal(n)
    kind = rng.integers(3)
    if kind == 1:  # pink-ish
        white = lfilter([0.049922, -0.095993, 0.050612, -0.004408], [1, -2.494956, 2.017265, -0.522189], white)
    elif kind == 2:  # brown
        white = lfilter([1.0], [1.0, -0.98], white)
    return white / max(float(np.std(white)), 1e-9)


def example(
    rng: np.random.Generator, words: list[str], context: tuple[int, ...] = OFFSETS
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    voice = Voice(
        str(rng.choice(VOICES)) + str(rng.choice(VARIANTS)),
        rate_wpm=int(rng.integers(120, 290)),
        pitch=int(rng.integers(15, 90)),
    )
    speech = Espeak.instance().synthesize(sentence(rng, words), voice)
    rate = int(rng.choice(RATES_HZ))
    audio = resample(speech.samples, speech.sample_rate, rate).astype(np.float64)
    scale = rate / speech.sample_rate
    offsets = [round(p.offset * scale) for p in speech.phonemes]
    labels = frame_labels(offsets, [p.symbol for p in speech.phonemes], len(audio), rate)
    tilt = float(rng.uniform(-0.9, 0.9))  # a random first-order tilt: microphones and rooms differ
    audio = lfilter([1.0, -tilt], [1.0], audio) if tilt > 0 else lfilter([1.0], [1.0, tilt], audio)
    audio *= 10 ** (rng.uniform(-35, 0) / 20) / max(float(np.max(np.abs(audio))), 1e-9)
    snr_db = rng.uniform(5, 45)
    speech_rms = float(np.sqrt(np.mean(audio[audio != 0] ** 2))) if np.any(audio) else 1e-4
    audio += noise(rng, len(audio)) * speech_rms * 10 ** (-snr_db / 20)
    if rng.random() < 0.3:
        audio += rng.uniform(-0.05, 0.05)  # DC offset
    features = features_of(audio.astype(np.float32), rate)
    x = stack_context(features, context, 0, len(features))
    return x, labels[: len(features)]


def build(
    n: int, seed: int, offsets: tuple[int, ...] = OFFSETS
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    rng = np.random.default_rng(seed)
    words = load_words()
    xs, ys = [], []
    for _ in range(n):
        x, y = example(rng, words, offsets)
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)


def augment(x: npt.NDArray[np.float32], rng: np.random.Generator, context: int) -> npt.NDArray[np.float32]:
    """Standardised inputs with noise and a random span of mel bands masked (in both copies
    of the bands, across the whole context): the model must not lean on fine spectral detail
    that eSpeak has and recorded speech lacks."""
    out = x + rng.standard_normal(x.shape, dtype=np.float32) * INPUT_NOISE
    framed = out.reshape(len(x), context, N_FEATURES)
    width = rng.integers(0, MAX_MASKED_BANDS + 1, size=len(x))
    first = rng.integers(0, N_MELS, size=len(x))
    band = np.arange(N_MELS)[None, :]
    masked = (band >= first[:, None]) & (band < (first + width)[:, None])
    framed[:, :, :N_MELS][np.broadcast_to(masked[:, None, :], (len(x), context, N_MELS))] = 0.0
    framed[:, :, N_MELS : 2 * N_MELS][np.broadcast_to(masked[:, None, :], (len(x), context, N_MELS))] = 0.0
    return framed.reshape(len(x), -1)


def train(
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.int64],
    hidden: tuple[int, ...],
    epochs: int,
    seed: int,
    offsets: tuple[int, ...] = OFFSETS,
) -> AudioModel:
    """Adam on cross-entropy with light label smoothing; plain numpy."""
    rng = np.random.default_rng(seed)
    mean = x.mean(axis=0).astype(np.float32)
    std = np.maximum(x.std(axis=0), 1e-3).astype(np.float32)
    xn = (x - mean) / std
    sizes = (x.shape[1], *hidden, len(VISEMES))
    params = []
    for a, b in itertools.pairwise(sizes):
        params += [rng.standard_normal((a, b)).astype(np.float32) * np.sqrt(2.0 / a), np.zeros(b, np.float32)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    step, batch, smooth = 0, 256, 0.05
    targets = np.full((len(VISEMES), len(VISEMES)), smooth / len(VISEMES), np.float32)
    targets += np.eye(len(VISEMES), dtype=np.float32) * (1 - smooth)
    for epoch in range(epochs):
        lr = 2e-3 * (0.5 ** (epoch / max(epochs / 3, 1)))
        order = rng.permutation(len(xn))
        loss_sum = 0.0
        for lo in range(0, len(order), batch):
            idx = order[lo : lo + batch]
            acts = [augment(xn[idx], rng, len(offsets))]
            for i in range(0, len(params), 2):
                h = acts[-1] @ params[i] + params[i + 1]
                if i < len(params) - 2:  # hidden: ReLU, then inverted dropout
                    h = np.maximum(h, 0.0) * (rng.random(h.shape, dtype=np.float32) >= DROPOUT) / (1 - DROPOUT)
                acts.append(h)
            logits = acts[-1] - acts[-1].max(axis=1, keepdims=True)
            probs = np.exp(logits)
            probs /= probs.sum(axis=1, keepdims=True)
            t = targets[y[idx]]
            loss_sum += float(-(t * np.log(probs + 1e-9)).sum())
            grad = (probs - t) / len(idx)
            grads: list[npt.NDArray[np.float32]] = [np.zeros(0, np.float32)] * len(params)
            for i in range(len(params) - 2, -1, -2):
                grads[i] = acts[i // 2].T @ grad
                grads[i + 1] = grad.sum(axis=0)
                if i:
                    grad = (grad @ params[i].T) * (acts[i // 2] > 0) / (1 - DROPOUT)
            step += 1
            for j, g in enumerate(grads):
                m[j] = 0.9 * m[j] + 0.1 * g
                v[j] = 0.999 * v[j] + 0.001 * g * g
                mh, vh = m[j] / (1 - 0.9**step), v[j] / (1 - 0.999**step)
                params[j] -= (lr * mh / (np.sqrt(vh) + 1e-8)).astype(np.float32)
        print(f"epoch {epoch + 1}/{epochs}: loss {loss_sum / len(xn):.3f}", flush=True)
    layers = tuple((params[i], params[i + 1]) for i in range(0, len(params), 2))
    return AudioModel(offsets, mean, std, layers)


def accuracy(model: AudioModel, x: npt.NDArray[np.float32], y: npt.NDArray[np.int64]) -> float:
    return float(np.mean(np.argmax(model.probabilities(x), axis=1) == y))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m presence.lipsync.train", description=__doc__)
    # The defaults reproduce the committed model; with --for-decoder, the decoder's.
    parser.add_argument(
        "--for-decoder",
        action="store_true",
        help="the model AlignedAnimator fuses into its phone scores: future context, its own file",
    )
    parser.add_argument("--utterances", type=int, default=3000)
    parser.add_argument("--validation", type=int, default=200)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 128])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    offsets = DECODER_OFFSETS if args.for_decoder else OFFSETS
    out: Path = args.out or model_path(DECODER_MODEL_FILE if args.for_decoder else MODEL_FILE)
    started = time.monotonic()
    x, y = build(args.utterances, args.seed, offsets)
    xv, yv = build(args.validation, args.seed + 1, offsets)
    print(f"{len(x)} training rows, {len(xv)} validation rows ({time.monotonic() - started:.0f} s)", flush=True)
    model = train(x, y, tuple(args.hidden), args.epochs, args.seed, offsets)
    print(f"held-out eSpeak row accuracy: {accuracy(model, xv, yv):.3f}")
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB) in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
