"""The pocketsphinx acoustic model read in numpy: files, front end and phone posteriors."""

from __future__ import annotations

import os

import numpy as np
import pocketsphinx
import pytest

from presence.audio.espeak import Espeak, Voice
from presence.audio.pcm import resample
from presence.lipsync.acoustic import AudioAnimator
from presence.lipsync.base import VISEME_INDEX, VISEMES
from presence.lipsync.phonemes import weights_of
from presence.lipsync.sphinx_am import (
    AcousticModel,
    CepstrumStream,
    ModelDefinition,
    delta_streams,
    model_dir,
    packaged_acoustic_model,
)
from presence.lipsync.sphinx_noise import NoiseRemover
from presence.media import AudioChunk


@pytest.fixture(scope="module")
def model() -> AcousticModel:
    return packaged_acoustic_model()


@pytest.fixture(scope="module")
def speech_16k() -> np.ndarray:
    speech = Espeak.instance().synthesize("Bob saw five big ships on the shore, and he waved.", Voice("en-us"))
    return resample(speech.samples, speech.sample_rate, 16000)


def cepstra_of(audio: np.ndarray, rate: int) -> np.ndarray:
    return CepstrumStream(rate).push(audio)[0]


def test_the_model_definition_lists_the_en_us_phones_with_their_senones() -> None:
    definition = ModelDefinition.read(model_dir() / "mdef")
    assert len(definition.phones) == 42 and {"SIL", "AA", "P", "ZH", "+NSN+"} <= set(definition.phones)
    assert definition.n_ci_senones == 126
    assert (definition.senone_phone >= 0).all()  # every senone belongs to a phone


def test_every_model_phone_maps_to_a_viseme(model: AcousticModel) -> None:
    assert model.to_viseme.shape == (42, len(VISEMES))
    assert np.array_equal(model.to_viseme.sum(axis=1), np.ones(42))
    assert model.to_viseme[model.phones.index("P"), VISEME_INDEX["PP"]] == 1
    assert model.to_viseme[model.phones.index("SIL"), VISEME_INDEX["sil"]] == 1


def test_cepstra_match_what_pocketsphinx_computes_itself(speech_16k: np.ndarray) -> None:
    """pocketsphinx's cepstral mean after a whole utterance (batch CMN) is the mean of its own
    cepstra: ours, noise removal included, must agree."""
    decoder = pocketsphinx.Decoder(
        hmm=str(model_dir()), allphone=str(model_dir().parent / "en-us-phone.lm.bin"), lm=None, logfn=os.devnull
    )
    noise = np.random.default_rng(0).standard_normal(len(speech_16k)) * 10 ** (-50 / 20)  # no digital silence
    pcm = (np.clip(speech_16k + noise, -1, 1) * 32767).astype("<i2")
    decoder.start_utt()
    decoder.process_raw(pcm.tobytes(), False, True)
    decoder.end_utt()
    theirs = np.array([float(v) for v in decoder.get_cmn(False).split(",")])
    ours = CepstrumStream(16000, normalise=False).push(pcm.astype(np.float32) / 32768.0)[0].mean(axis=0)
    assert np.abs(ours - theirs).max() < 1.5 and np.abs(ours - theirs).mean() < 0.4  # c0 is about 55


def test_cepstra_hardly_depend_on_the_sample_rate(speech_16k: np.ndarray) -> None:
    at16 = cepstra_of(speech_16k, 16000)
    at48 = cepstra_of(resample(speech_16k, 16000, 48000), 48000)
    n = min(len(at16), len(at48))
    speech = at16[:n, 0] > np.percentile(at16[:n, 0], 50)  # the louder half: speech, not silence
    assert np.median(np.abs(at16[:n][speech] - at48[:n][speech])) < 0.5


def test_cepstra_are_the_same_in_any_pieces(speech_16k: np.ndarray) -> None:
    whole = cepstra_of(speech_16k, 16000)
    stream = CepstrumStream(16000)
    rng = np.random.default_rng(0)
    parts, i = [], 0
    while i < len(speech_16k):
        n = int(rng.integers(1, 900))
        parts.append(stream.push(speech_16k[i : i + n])[0])
        i += n
    assert np.allclose(np.concatenate(parts), whole)


def test_deltas_use_no_frame_after_the_next(speech_16k: np.ndarray) -> None:
    cepstra = cepstra_of(speech_16k, 16000)
    t = 50
    full = delta_streams(cepstra, t, 1)
    cut = delta_streams(cepstra[: t + 2], t, 1)  # frames up to t+1 only
    assert all(np.array_equal(a, b) for a, b in zip(full, cut, strict=True))


def test_phone_posteriors_find_the_vowel_in_a_sustained_ah(model: AcousticModel) -> None:
    speech = Espeak.instance().synthesize("ah", Voice("en-us", rate_wpm=80))
    audio = resample(speech.samples, speech.sample_rate, 16000)
    cepstra = cepstra_of(audio, 16000)
    loud = np.argsort(cepstra[:, 0])[-10:]  # the loudest frames are the vowel
    visemes = model.viseme_posteriors(delta_streams(cepstra, 0, len(cepstra)), 0.3)
    assert visemes[loud].mean(axis=0).argmax() == VISEME_INDEX["aa"]


def test_the_cepstral_mean_carries_over_to_the_next_reply(speech_16k: np.ndarray) -> None:
    animator = AudioAnimator(16000)
    animator.push(AudioChunk(1, speech_16k, 16000), 0)
    animator.flush()
    learned = animator._cepstra._cmn_sum / animator._cepstra._cmn_count
    animator.push(AudioChunk(2, speech_16k[:1600], 16000), 10**6)
    assert np.allclose(animator._cepstra._cmn_sum[:3] / animator._cepstra._cmn_count, learned[:3], atol=3.0)


def test_a_reply_streamed_at_48k_moves_the_mouth_like_at_16k(speech_16k: np.ndarray) -> None:
    def run(rate: int) -> np.ndarray:
        audio = resample(speech_16k, 16000, rate)
        animator = AudioAnimator(rate, fps=100)
        frames = []
        for i in range(0, len(audio), rate // 50):
            frames += animator.push(AudioChunk(1, audio[i : i + rate // 50], rate), i)
        return weights_of(frames + animator.flush())

    at16, at48 = run(16000), run(48000)
    n = min(len(at16), len(at48))
    agree = np.mean(at16[:n].argmax(axis=1) == at48[:n].argmax(axis=1))
    assert agree > 0.8


def test_noise_removal_pushes_steady_noise_down_and_lets_an_onset_through() -> None:
    remover = NoiseRemover(25)
    rng = np.random.default_rng(2)
    steady = np.abs(rng.normal(1e4, 1e3, size=(400, 25)))
    out = remover.apply(steady)
    early, late = np.median(out[5:20] / steady[5:20]), np.median(out[-50:] / steady[-50:])
    assert late < 0.5 and late < early  # the noise estimate rises and pushes steady noise down
    burst = remover.apply(np.full((3, 25), 1e7))  # a loud onset passes
    assert burst[-1].min() > 0.5e7
    assert np.isfinite(out).all() and np.isfinite(burst).all()
