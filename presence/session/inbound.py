"""User audio's way in: wire frames → 16 kHz float32 on the input timeline → VAD windows.

Pure and synchronous. Clients suppress silence, so the stream has gaps; they are filled with
digital silence, either when audio resumes (its timestamp says how long the gap was) or when
the session's ticker says time has passed (``advance_to``), so turn-taking keeps counting
silence while nothing arrives. Late or overlapping audio is counted and dropped.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np

from presence.audio.pcm import Float32, StreamResampler, s16le_to_float
from presence.audio.vad import VoiceActivityDetector
from presence.media import INPUT_SAMPLE_RATE, InputAudio
from presence.protocol.errors import InvalidPayload
from presence.protocol.hello import OPUS, PCM_S16LE, AudioFormat
from presence.session.input_clock import InputClock, InputLimits

MAX_GAP_FILL_SAMPLES: Final = 10 * INPUT_SAMPLE_RATE  # longer gaps restart the timeline there

Decoder = Callable[[bytes], Float32]


def make_decoder(fmt: AudioFormat) -> Decoder:
    """A function from one AUDIO_IN payload to float32 samples at ``fmt.sample_rate``."""
    if fmt.codec == PCM_S16LE:

        def decode_pcm(payload: bytes) -> Float32:
            try:
                return s16le_to_float(payload)
            except ValueError as exc:
                raise InvalidPayload(str(exc)) from None

        return decode_pcm
    if fmt.codec == OPUS:
        # PyAV is imported only when a client chooses Opus.
        opus = importlib.import_module("presence.audio.opus")
        decoder: Decoder = opus.OpusDecoder(fmt.sample_rate).decode
        return decoder
    raise InvalidPayload(f"unsupported input codec {fmt.codec!r}")


@dataclass(frozen=True, slots=True)
class VadWindow:
    probability: float
    t_samples: int  # input-timeline sample (16 kHz) of the window's first sample
    length: int
    samples: Float32  # the window itself, for prosody cues


@dataclass(slots=True)
class InboundStats:
    frames: int = 0
    samples: int = 0
    gap_samples_filled: int = 0
    dropped_late_samples: int = 0


class Inbound:
    """Decode, resample to 16 kHz, stamp, and window user audio for the VAD."""

    def __init__(
        self,
        fmt: AudioFormat,
        vad: VoiceActivityDetector,
        decoder: Decoder | None = None,
        limits: InputLimits | None = None,
    ) -> None:
        self.format = fmt
        self.clock = InputClock(fmt.sample_rate, limits)
        self.vad = vad
        self.decode = decoder or make_decoder(fmt)
        self.resampler = StreamResampler(fmt.sample_rate, INPUT_SAMPLE_RATE)
        self.stats = InboundStats()
        self._next_wire_sample: int | None = None  # expected timestamp of the next frame (wire rate)
        self._position: int | None = None  # input-timeline position of the next 16 kHz sample
        self._window = np.zeros(0, dtype=np.float32)
        self._window_start = 0

    @property
    def position(self) -> int:
        """Input-timeline sample (16 kHz) up to which audio has been accounted for."""
        return self._position or 0

    def push(self, payload: bytes, timestamp: int, now_s: float) -> tuple[list[InputAudio], list[VadWindow]]:
        """One AUDIO_IN frame that arrived at ``now_s``; returns audio for the engine and VAD
        windows now complete. Raises ``InputOutOfBounds`` before any work for a frame whose
        timestamp or rate the real clock does not allow (``InputClock``)."""
        samples = self.decode(payload)
        self.clock.check(timestamp, len(samples), now_s)
        self.stats.frames += 1
        out_audio: list[InputAudio] = []
        windows: list[VadWindow] = []
        if self._next_wire_sample is None:
            self._next_wire_sample = timestamp
            self._position = timestamp * INPUT_SAMPLE_RATE // self.format.sample_rate - self.resampler.delay_samples
            self._window_start = self._position
        gap = timestamp - self._next_wire_sample
        if gap < 0:  # overlaps audio already accounted for: keep only the new part
            drop = min(-gap, len(samples))
            self.stats.dropped_late_samples += drop
            samples = samples[drop:]
            timestamp += drop
        elif gap > 0:
            gap16 = gap * INPUT_SAMPLE_RATE // self.format.sample_rate
            target = self.position + gap16
            if gap16 > MAX_GAP_FILL_SAMPLES:
                self._restart_at(target)
            else:
                a, w = self._fill_to(target)
                out_audio += a
                windows += w
        self._next_wire_sample = max(self._next_wire_sample, timestamp + len(samples))
        if len(samples) == 0:
            return out_audio, windows
        resampled = self.resampler.process(samples)
        self.stats.samples += len(resampled)
        a, w = self._append(resampled)
        return out_audio + a, windows + w

    def advance_to(self, t_samples: int) -> tuple[list[InputAudio], list[VadWindow]]:
        """Time has passed with no audio (suppressed silence): fill with silence up to ``t_samples``."""
        if self._position is None or t_samples <= self._position:
            return [], []
        out = self._fill_to(min(t_samples, self._position + MAX_GAP_FILL_SAMPLES))
        # The wire timeline moves on too, so audio that resumes later is not taken as a gap twice.
        assert self._next_wire_sample is not None
        self._next_wire_sample = max(
            self._next_wire_sample,
            (self.position + self.resampler.delay_samples) * self.format.sample_rate // INPUT_SAMPLE_RATE,
        )
        return out

    def _fill_to(self, target: int) -> tuple[list[InputAudio], list[VadWindow]]:
        missing = target - self.position
        if missing <= 0:
            return [], []
        self.stats.gap_samples_filled += missing
        return self._append(np.zeros(missing, dtype=np.float32))

    def _restart_at(self, target: int) -> None:
        self._position = target
        self._window = np.zeros(0, dtype=np.float32)
        self._window_start = target

    def _append(self, samples: Float32) -> tuple[list[InputAudio], list[VadWindow]]:
        start = self.position
        self._position = start + len(samples)
        self._window = np.concatenate([self._window, samples])
        windows: list[VadWindow] = []
        size = self.vad.window_samples
        while len(self._window) >= size:
            window = self._window[:size]
            windows.append(VadWindow(self.vad.probability(window), self._window_start, size, window))
            self._window = self._window[size:]
            self._window_start += size
        return [InputAudio(samples, start)], windows
