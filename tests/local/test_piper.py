"""--tts piper: the Piper voice through onnxruntime, with exact phoneme durations for the lips."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from presence.config import Settings
from presence.engines.base import SessionOptions
from presence.engines.local.engine import LocalEngine
from presence.engines.local.piper import HOP_SAMPLES, IPA_TO_ARPABET, PiperVoice, TimedPhone, timed_phones
from presence.media import AudioChunk
from tests.local.test_local_engine import ask


def test_stress_goes_to_the_vowel_it_stresses_and_length_to_the_vowel_it_lengthens() -> None:
    symbols = ["^", "_", "h", "_", "ˈ", "_", "ɑ", "_", "ː", "_", ",", "$"]
    frames = [1, 0, 2, 1, 3, 0, 4, 0, 2, 1, 5, 1]
    H = HOP_SAMPLES
    assert timed_phones(symbols, frames) == [
        TimedPhone(1 * H, 2 * H, "HH"),
        TimedPhone(4 * H, (3 + 4 + 2) * H, "AA"),  # ˈ before it, ː after it (pads keep their time)
    ]


def test_unknown_symbols_and_punctuation_get_no_mark_but_keep_their_time() -> None:
    phones = timed_phones(["^", "ʘ", "m", "."], [2, 3, 4, 5])
    assert phones == [TimedPhone(5 * HOP_SAMPLES, 4 * HOP_SAMPLES, "M")]


@pytest.fixture(scope="module")
def voice() -> Iterator[PiperVoice]:
    loaded = PiperVoice()
    loaded.load()
    yield loaded


@pytest.mark.local_models
def test_the_durations_tensor_accounts_for_every_sample(voice: PiperVoice) -> None:
    speeches = voice.speak("The train station is a ten minute walk, turn left at the entrance.")
    assert len(speeches) == 2, "one synthesis per clause"
    for speech in speeches:
        assert speech.total_frames * HOP_SAMPLES == len(speech.samples)
        offsets = [p.offset_samples for p in speech.phones]
        assert offsets == sorted(offsets) and offsets[-1] < len(speech.samples)
        assert len(speech.phones) > 10
        assert {p.arpabet for p in speech.phones} <= set(IPA_TO_ARPABET.values())


@pytest.mark.local_models
@pytest.mark.slow
async def test_the_engine_speaks_with_piper_and_arpabet_marks() -> None:
    engine = LocalEngine(Settings(engine="local", tts="piper"))
    await engine.start()
    session = await engine.open_session(SessionOptions("t"))
    outputs = await ask(session, 1, "What time does the restaurant open tomorrow?")
    await session.close()
    await engine.stop()
    audio = [o for o in outputs if isinstance(o, AudioChunk)]
    assert audio and all(chunk.sample_rate == 22_050 for chunk in audio)
    marks = [m for chunk in audio for m in chunk.phonemes]
    assert marks and all(m.alphabet == "arpabet" and m.duration_samples > 0 for m in marks)
