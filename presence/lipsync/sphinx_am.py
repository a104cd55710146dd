"""Frame-level phone posteriors from pocketsphinx's en-us acoustic model, evaluated in numpy.

Why: pocketsphinx's decoder labels phones well (its acoustic model was trained on recorded
speech) but settles late, because a Viterbi path only commits after the phone ends. The
model itself needs no such wait: each 10 ms frame's Gaussian mixtures say how likely each
phone is *now*. This module reads the model files that ship in the pocketsphinx wheel
(``means``, ``variances``, ``sendump``: a phonetically tied mixture model, one 128-Gaussian
codebook per context-independent phone and three feature streams) and computes, per frame,
the posterior of each of its 42 phones from the three context-independent states of each.

The front end reproduces sphinx's MFCC (``feat.params``: 25 mel filters 130–6800 Hz,
0.97 pre-emphasis, 25.625 ms Hamming windows every 10 ms, 512-point FFT at 16 kHz, DCT-II,
lifter 22, live cepstral mean normalisation) at any sample rate: the filters are laid out
in Hz and pre-emphasis is applied as its 16 kHz frequency response, so 24 or 48 kHz audio
needs no resampler (and none of its delay). Sphinx's noise removal is left out.

Deltas normally reach 3 frames ahead (``1s_c_d_dd``); to keep the look-ahead at 30 ms the
delta streams are taken from earlier frames (``FUTURE_FRAMES`` = 1: Δ from frame t−1, ΔΔ
from t−2), so frame t needs cepstra only up to t+1. Chosen on eSpeak speech, not on the
evaluation data.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from presence.lipsync.base import VISEME_INDEX, VISEMES
from presence.lipsync.phones import ARPABET_TO_VISEME, SILENCE
from presence.lipsync.sphinx_noise import NoiseRemover

Matrix = npt.NDArray[np.float64]

N_CEP: Final = 13
HOP_S: Final = 0.010
WINDOW_S: Final = 0.025625
PRE_EMPHASIS: Final = 0.97
N_FILTERS: Final = 25
LOWER_HZ: Final = 130.0
UPPER_HZ: Final = 6800.0
LIFTER: Final = 22
LOG_FLOOR: Final = 1e-4
CMN_INIT: Final = (40.0, 3.0, -1.0)  # sphinx's default prior for the cepstral mean
CMN_WINDOW: Final = 500  # frames; the running mean is rescaled to this many past 800
CMN_HIGH_WATER: Final = 800
FUTURE_FRAMES: Final = 1
PAST_FRAMES: Final = 5  # ΔΔ of frame t−2 reaches back to t−5
_LN_MIXW_STEP: Final = float(np.log(1.0001) * 1024)  # sendump: -log base 1.0001, shifted by 10 bits


class AcousticModelMissingError(FileNotFoundError):
    """pocketsphinx (and the en-us model inside its wheel) is not installed."""


def model_dir() -> Path:
    try:
        import pocketsphinx
    except ImportError as exc:  # pragma: no cover - pocketsphinx is a core dependency
        raise AcousticModelMissingError("the audio lip-sync animator needs the pocketsphinx package") from exc
    return Path(pocketsphinx.__file__).parent / "model" / "en-us" / "en-us"


def _s3_body(path: Path) -> tuple[bytes, int]:
    raw = path.read_bytes()
    start = raw.index(b"endhdr\n") + len(b"endhdr\n")
    (magic,) = struct.unpack("<i", raw[start : start + 4])
    if magic != 0x11223344:
        raise ValueError(f"{path}: not a little-endian sphinx model file")
    return raw, start + 4


def _read_gaussians(path: Path) -> npt.NDArray[np.float64]:
    """(codebooks, streams, densities, 13) from a sphinx ``means`` or ``variances`` file."""
    raw, at = _s3_body(path)
    n_cb, n_streams, n_dens = struct.unpack("<3i", raw[at : at + 12])
    at += 12
    lengths = struct.unpack(f"<{n_streams}i", raw[at : at + 4 * n_streams])
    at += 4 * n_streams + 4  # and the total count
    if set(lengths) != {N_CEP}:
        raise ValueError(f"{path}: expected three {N_CEP}-dimensional streams, got {lengths}")
    count = n_cb * n_streams * n_dens * N_CEP
    data = np.frombuffer(raw, dtype="<f4", count=count, offset=at)
    return data.reshape(n_cb, n_streams, n_dens, N_CEP).astype(np.float64)


def _read_mixture_weights(path: Path, n_senones: int) -> npt.NDArray[np.float64]:
    """Natural-log mixture weights (streams, densities, first ``n_senones`` senones)."""
    raw = path.read_bytes()
    at = 0
    while True:  # header: length-prefixed strings, ended by a zero length
        (length,) = struct.unpack("<i", raw[at : at + 4])
        at += 4 + length
        if length == 0:
            break
    rows, cols = struct.unpack("<2i", raw[at : at + 8])
    at += 8
    quantised = np.frombuffer(raw, dtype=np.uint8, count=3 * rows * cols, offset=at).reshape(3, rows, cols)
    return -quantised[:, :, :n_senones].astype(np.float64) * _LN_MIXW_STEP


@dataclass(frozen=True, slots=True)
class ModelDefinition:
    """What the binary ``mdef`` says that this module needs: the context-independent phones
    and, per senone, the phone whose codebook it uses."""

    phones: tuple[str, ...]
    n_ci_senones: int
    senone_phone: npt.NDArray[np.int64]

    @classmethod
    def read(cls, path: Path) -> ModelDefinition:
        raw = path.read_bytes()
        marker, _version, header_len = struct.unpack("<3i", raw[:12])
        if marker != 0x46444D42:  # "BMDF" in native little-endian order
            raise ValueError(f"{path}: not a little-endian binary model definition")
        at = 12 + header_len
        n_ci, n_phone, n_emit, n_ci_sen, n_sen, _tmat, n_sseq, _ctx, n_cd_tree, _sil = struct.unpack(
            "<10i", raw[at : at + 40]
        )
        at += 40
        names_start = at
        phones = []
        for _ in range(n_ci):
            end = raw.index(b"\x00", at)
            phones.append(raw[at:end].decode("ascii"))
            at = end + 1
        at = names_start + ((at - names_start + 3) & ~3) + 8 * n_cd_tree
        entry = np.dtype([("ssid", "<i4"), ("tmat", "<i4"), ("info", "u1", 4)])
        table = np.frombuffer(raw, dtype=entry, count=n_phone, offset=at)
        at += entry.itemsize * n_phone + 4
        sseq = np.frombuffer(raw, dtype="<u2", count=n_sseq * n_emit, offset=at).reshape(n_sseq, n_emit)
        base = np.where(np.arange(n_phone) < n_ci, np.arange(n_phone), table["info"][:, 1])
        senone_phone = np.full(n_sen, -1, dtype=np.int64)
        for pid in range(n_phone - 1, -1, -1):  # the first phone using a senone wins, as in sphinx
            senone_phone[sseq[table["ssid"][pid]]] = base[pid]
        return cls(tuple(phones), n_ci_sen, senone_phone)


def phone_viseme(phone: str) -> str:
    """Viseme of one of the model's phones (fillers and SIL are silence)."""
    return SILENCE if phone.startswith("+") else ARPABET_TO_VISEME.get(phone, SILENCE)


@dataclass(frozen=True, slots=True)
class AcousticModel:
    """The context-independent part of the PTM model, arranged for batch evaluation."""

    phones: tuple[str, ...]
    # Per stream: x @ quad → Σ x²/v terms; x @ lin → Σ x·m/v terms (codebook × density columns).
    inv_var: tuple[Matrix, ...]
    mean_over_var: tuple[Matrix, ...]
    const: tuple[Matrix, ...]  # log normaliser − ½ Σ m²/v per Gaussian
    weights: tuple[npt.NDArray[np.float64], ...]  # (codebooks, densities, states) linear mixture weights
    to_viseme: Matrix  # (phones, 15)

    @classmethod
    def load(cls, directory: Path | None = None) -> AcousticModel:
        directory = directory or model_dir()
        if not (directory / "means").exists():
            raise AcousticModelMissingError(f"no pocketsphinx acoustic model at {directory}")
        definition = ModelDefinition.read(directory / "mdef")
        phones = definition.phones
        means = _read_gaussians(directory / "means")
        variances = np.maximum(_read_gaussians(directory / "variances"), 1e-4)
        n_cb, n_streams, n_dens, _ = means.shape
        if n_cb != len(phones):
            raise ValueError(f"{n_cb} codebooks for {len(phones)} phones: not a phonetically tied model")
        # Context-independent senones come first, three per phone, each on its phone's codebook.
        if definition.n_ci_senones != 3 * n_cb or not np.array_equal(
            definition.senone_phone[: 3 * n_cb], np.arange(3 * n_cb) // 3
        ):
            raise ValueError(f"{directory}: expected three context-independent senones per phone, in order")
        log_w = _read_mixture_weights(directory / "sendump", 3 * n_cb)
        inv_var, mean_over_var, const, weights = [], [], [], []
        for s in range(n_streams):
            m, v = means[:, s].reshape(-1, N_CEP), variances[:, s].reshape(-1, N_CEP)
            inv_var.append((1.0 / v).T.copy())
            mean_over_var.append((m / v).T.copy())
            const.append(-0.5 * (np.log(2 * np.pi * v).sum(axis=1) + (m * m / v).sum(axis=1)))
            w = np.exp(log_w[s].T.reshape(n_cb, 3, n_dens)).transpose(0, 2, 1)  # (cb, dens, state)
            weights.append(np.ascontiguousarray(w))
        to_viseme = np.zeros((len(phones), len(VISEMES)))
        for i, phone in enumerate(phones):
            to_viseme[i, VISEME_INDEX[phone_viseme(phone)]] = 1.0
        return cls(tuple(phones), tuple(inv_var), tuple(mean_over_var), tuple(const), tuple(weights), to_viseme)

    def state_log_likelihoods(self, streams: tuple[Matrix, Matrix, Matrix]) -> Matrix:
        """(frames, phones, 3): log likelihood of each context-independent HMM state."""
        total: Matrix | None = None
        n = len(streams[0])
        for x, inv_var, mean_over_var, const, weights in zip(
            streams, self.inv_var, self.mean_over_var, self.const, self.weights, strict=True
        ):
            log_g = const[None, :] - 0.5 * ((x * x) @ inv_var) + x @ mean_over_var  # (n, cb*dens)
            peak = log_g.max(axis=1, keepdims=True)
            g = np.exp(log_g - peak).reshape(n, len(self.phones), -1).transpose(1, 0, 2)  # (cb, n, dens)
            state = np.matmul(g, weights).transpose(1, 0, 2)  # (n, cb, 3) stream likelihoods, scaled
            log_state = np.log(np.maximum(state, 1e-300)) + peak[:, :, None]
            total = log_state if total is None else total + log_state
        assert total is not None
        return total

    def phone_log_likelihoods(self, streams: tuple[Matrix, Matrix, Matrix]) -> Matrix:
        """(frames, phones): log Σ over a phone's three states of each state's likelihood."""
        total = self.state_log_likelihoods(streams)
        top = total.max(axis=2, keepdims=True)
        phone: Matrix = top[:, :, 0] + np.log(np.exp(total - top).sum(axis=2))
        return phone

    def viseme_posteriors(self, streams: tuple[Matrix, Matrix, Matrix], scale: float) -> Matrix:
        """(frames, 15): phone posteriors at acoustic ``scale`` (flat prior), summed per viseme."""
        log_p = self.phone_log_likelihoods(streams) * scale
        log_p -= log_p.max(axis=1, keepdims=True)
        p = np.exp(log_p)
        p /= p.sum(axis=1, keepdims=True)
        visemes: Matrix = p @ self.to_viseme
        return visemes


@functools.cache
def packaged_acoustic_model() -> AcousticModel:
    """The model in the installed pocketsphinx wheel, loaded once per process (read-only)."""
    return AcousticModel.load()


@dataclass(frozen=True, slots=True)
class _Geometry:
    hop: int
    window: int
    n_fft: int
    hamming: Matrix
    filters: Matrix  # (bins, filters), pre-emphasis response folded in
    dct: Matrix  # (filters, 13), lifter folded in
    scale: float  # makes filter energies comparable to 16 kHz int16 input

    @classmethod
    def for_rate(cls, rate: int) -> _Geometry:
        hop = round(rate * HOP_S)
        window = round(rate * WINDOW_S)
        n_fft = round(512 * rate / 16000)  # bins every 31.25 Hz, as sphinx's at 16 kHz: same filters
        step = rate / n_fft
        bins = np.arange(n_fft // 2 + 1) * step

        def mel(hz: float) -> float:
            return float(2595.0 * np.log10(1.0 + hz / 700.0))

        def hz(m: float) -> float:
            return float(700.0 * (10 ** (m / 2595.0) - 1.0))

        lo, hi = mel(LOWER_HZ), mel(UPPER_HZ)
        width = (hi - lo) / (N_FILTERS + 1)
        filters = np.zeros((len(bins), N_FILTERS))
        for i in range(N_FILTERS):
            left, mid, right = (round(hz(lo + (i + j) * width) / step) * step for j in range(3))
            inside = (bins >= left) & (bins <= right) & (np.arange(len(bins)) < n_fft // 2)
            rising = (bins - left) / (mid - left) * 2 / (right - left)
            falling = (right - bins) / (right - mid) * 2 / (right - left)
            filters[:, i] = np.where(inside, np.minimum(rising, falling), 0.0)
        # Pre-emphasis as sphinx applies it at 16 kHz, expressed as a response in Hz.
        response = np.abs(1.0 - PRE_EMPHASIS * np.exp(-2j * np.pi * bins / 16000.0)) ** 2
        filters *= response[:, None]
        k = np.arange(N_CEP)[:, None]
        dct = np.cos(np.pi / N_FILTERS * k * (np.arange(N_FILTERS)[None, :] + 0.5))
        dct[0] *= np.sqrt(1.0 / N_FILTERS)
        dct[1:] *= np.sqrt(2.0 / N_FILTERS)
        lifter = 1 + LIFTER / 2 * np.sin(np.arange(N_CEP) * np.pi / LIFTER)
        hamming = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(window) / (window - 1))
        # For the same sound, filter energies grow with the window length and the FFT size
        # (bins per Hz): refer both to sphinx at 16 kHz (410 samples, 512 bins), int16 scale.
        scale = 32768.0**2 * (410 / window) * (512 / n_fft)
        return cls(hop, window, n_fft, hamming, filters, (dct * lifter[:, None]).T.copy(), scale)


class CepstrumStream:
    """Sphinx-compatible, mean-normalised cepstra from audio fed in any pieces.

    Frame ``t`` is the window starting at sample ``t * hop`` of the stream. The running
    cepstral mean survives ``restart()`` (a new reply from the same voice starts with a
    good estimate); ``forget()`` drops it too.
    """

    def __init__(self, sample_rate: int, normalise: bool = True, remove_noise: bool = True) -> None:
        self.geometry = _Geometry.for_rate(sample_rate)
        self.normalise = normalise  # False: raw cepstra (for comparing with sphinx's own)
        self._noise = NoiseRemover(N_FILTERS) if remove_noise else None
        self.forget()

    def forget(self) -> None:
        self._cmn_sum = np.zeros(N_CEP)
        self._cmn_sum[: len(CMN_INIT)] = CMN_INIT
        self._cmn_sum *= CMN_WINDOW
        self._cmn_count = CMN_WINDOW
        self.restart()

    def restart(self) -> None:
        if self._noise is not None:
            self._noise.reset()  # sphinx restarts its noise statistics with each utterance
        self._audio = np.zeros(0)
        self._audio_start = 0
        self.frames_done = 0

    def push(self, samples: npt.NDArray[np.floating]) -> tuple[Matrix, Matrix]:
        """Cepstra (frames × 13) and each frame's level in dBFS, for the windows now complete."""
        clean = np.nan_to_num(np.asarray(samples, dtype=np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
        self._audio = np.concatenate([self._audio, np.clip(clean, -1.0, 1.0)])
        g = self.geometry
        end = self._audio_start + len(self._audio)
        count = max((end - g.window) // g.hop + 1 - self.frames_done, 0)
        out = np.zeros((count, N_CEP))
        level_db = np.zeros(count)
        if count:
            starts = (self.frames_done + np.arange(count)) * g.hop - self._audio_start
            frames = self._audio[starts[:, None] + np.arange(g.window)[None, :]]
            frames = frames - frames.mean(axis=1, keepdims=True)  # a DC offset is not speech
            level_db = 10.0 * np.log10(np.mean(frames * frames, axis=1) + 1e-20)
            power = np.abs(np.fft.rfft(frames * g.hamming, n=g.n_fft, axis=1)) ** 2
            energies = power @ g.filters * g.scale
            if self._noise is not None:
                energies = self._noise.apply(energies)
            cepstra = np.log(energies + LOG_FLOOR) @ g.dct
            for i, c in enumerate(cepstra):
                out[i] = c - self._cmn_sum / self._cmn_count if self.normalise else c
                self._cmn_sum += c
                self._cmn_count += 1
                if self._cmn_count > CMN_HIGH_WATER:
                    self._cmn_sum *= CMN_WINDOW / self._cmn_count
                    self._cmn_count = CMN_WINDOW
            self.frames_done += count
        keep_from = max(self.frames_done * g.hop - self._audio_start, 0)
        self._audio = self._audio[keep_from:]
        self._audio_start += keep_from
        return out, level_db


def delta_streams(
    cepstra: Matrix, first: int, count: int, future: int = FUTURE_FRAMES
) -> tuple[Matrix, Matrix, Matrix]:
    """Streams (c, Δ, ΔΔ) for frames ``first..first+count-1`` of ``cepstra``, using no frame
    after t + ``future`` (3 is sphinx's own layout); indices clamp to the frames held."""
    t = np.arange(first, first + count)

    def c(index: npt.NDArray[np.int64]) -> Matrix:
        rows: Matrix = cepstra[np.clip(index, 0, len(cepstra) - 1)]
        return rows

    d_at = t - max(0, 2 - future)
    dd_at = t - max(0, 3 - future)
    delta = c(d_at + 2) - c(d_at - 2)
    delta2 = (c(dd_at + 3) - c(dd_at - 1)) - (c(dd_at + 1) - c(dd_at - 3))
    return c(t), delta, delta2
