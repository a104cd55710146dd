"""What the session's ASR would have said at each pause of a benchmark stream.

The predictor may only read words the session really has: at every silence onset the VAD
reports (the ``silence`` move), the session asks its recogniser for the turn's words so far.
``asr_transcripts`` replays that with pocketsphinx in streaming mode (the local engine's ASR),
one utterance per turn, and stamps each answer with the audio it covers and the moment it is
ready (the onset's window end plus the decoder's measured time). ``oracle_transcripts`` gives
the reference words at the same moments: an upper bound, never the headline.
``whisper_transcripts`` replays the live local engine's Whisper tiny.en, which is not streaming:
the engine decodes the turn so far when the session says ``user_paused`` (``speculate_ms`` into
the pause), with its trimmed encoder window, and the words are ready only after that decode.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Final, Protocol

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


def pause_points(probs: np.ndarray, config: TurnConfig) -> list[int]:
    """Where the session tells the engine ``user_paused`` (silence reached ``speculate_ms``): the
    local engine starts its Whisper decode of the turn there (rule-independent)."""
    never = FixedSilence(1e9)
    taker = TurnTaker(
        TurnConfig(
            config.speech_threshold,
            config.min_speech_ms,
            config.speculate_ms,
            silence_threshold=config.silence_threshold,
            rule=never,
        )
    )
    out = []
    for i, prob in enumerate(probs):
        for tr in taker.on_vad(float(prob), i * WINDOW_SAMPLES, WINDOW_SAMPLES):
            if tr.signal is Signal.PAUSE_SHORT:
                out.append(tr.t_samples)
    return out


class _Decoder(Protocol):
    def decode(self, audio: Float32) -> Any: ...


def whisper_recogniser(threads: int = 1) -> Any:
    """The local engine's own Whisper (tiny.en, trimmed encoder window, greedy, loop guard)."""
    from presence.engines.local.whisper import WhisperAsr

    asr = WhisperAsr(threads=threads)
    asr.load()
    return asr


def whisper_transcripts(
    audio: Float32, turns: tuple[_Turn, ...], points: list[int], asr: _Decoder | None = None
) -> tuple[list[Transcript], list[float]]:
    """What the live local engine's Whisper says at each ``user_paused`` point (``pause_points``):
    the engine's own decode of the turn so far (its pre-roll on), ready after that decode's
    CPU time. Whisper is not streaming, so nothing is known between these points."""
    own: Any = whisper_recogniser() if asr is None else None
    recogniser: _Decoder = asr if asr is not None else own
    out: list[Transcript] = []
    costs: list[float] = []
    for start, horizon in _turn_spans(turns, len(audio)):
        for point in [p for p in points if start <= p < horizon]:
            decoded = recogniser.decode(audio[start:point])
            cost_ms = float(decoded.cpu_s) * 1000
            costs.append(cost_ms)
            out.append(Transcript(point + int(cost_ms * RATE / 1000), point, str(decoded.text)))
    if own is not None:
        own.stop()
    return out, costs
