"""One reply's way out: engine chunks → timeline-stamped audio frames and animation frames.

Pure and synchronous: the session feeds it chunks and sends what it returns. Audio is
resampled to the output rate without seams, cut into frames of ``frame_ms``, and every
frame, audio or animation, carries its position on the output timeline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from presence.audio.opus import OpusEncoder
from presence.audio.pcm import StreamResampler, float_to_s16le
from presence.expression.track import ExpressionCue, ExpressionTrack
from presence.lipsync.base import Animator, VisemeFrame
from presence.lipsync.weightsets import quantize
from presence.media import OPUS_SAMPLE_RATE, AudioChunk, PhonemeMark, opus_packet_timestamp
from presence.protocol.frames import Animation, AudioOut, Event, Flags, Frame
from presence.protocol.hello import OPUS, PCM_S16LE, WEIGHT_SETS

WeightMapper = Callable[[np.ndarray, str], np.ndarray]


def identity_weights(weights: np.ndarray, weight_set: str) -> np.ndarray:
    if weight_set != "oculus15":
        raise ValueError(f"no mapping to weight set {weight_set!r}")
    return weights


class ReplyStream:
    """Frames for one reply that starts at output-timeline sample ``start_sample``."""

    def __init__(
        self,
        turn_id: int,
        start_sample: int,
        sample_rate: int,
        animator: Animator,
        weight_set: str,
        frame_ms: int = 20,
        map_weights: WeightMapper = identity_weights,
        codec: str = PCM_S16LE,
        expressions: bool = False,
    ) -> None:
        self.turn_id = turn_id
        self.start_sample = start_sample
        self.sample_rate = sample_rate
        self.animator = animator
        self.weight_set = weight_set
        self.weight_set_id = WEIGHT_SETS[weight_set][0]
        self.frame_samples = sample_rate * frame_ms // 1000
        self.map_weights = map_weights
        self._resampler: StreamResampler | None = None
        self._source_rate: int | None = None
        self._to_skip = 0  # resampler warm-up samples still to drop
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = start_sample  # timeline position of _buffer[0]
        self._source_consumed = 0  # source-rate samples received so far
        self.sent_audio_frames = 0
        self.sent_animation_frames = 0
        self.finished = False
        self.text_by_end_sample: list[tuple[int, str]] = []
        self.animation_report: dict[str, Any] = {}
        # Opus: each reply is its own Opus stream (decoders reset at SEGMENT_START), so a
        # reply's first packet carries the pre-skip and the timestamps follow docs/protocol.md.
        self._encoder: OpusEncoder | None = None
        if codec == OPUS:
            if sample_rate != OPUS_SAMPLE_RATE:
                raise ValueError(f"opus output runs on a {OPUS_SAMPLE_RATE} Hz timeline, not {sample_rate}")
            self._encoder = OpusEncoder()
        elif codec != PCM_S16LE:
            raise ValueError(f"unknown output codec {codec!r}")
        self._packets = 0
        # Expression cues (negotiated feature): scored from the text, held until the next
        # batch of frames so they leave ahead of, or with, the audio they precede.
        self._expressions = ExpressionTrack(start_sample, sample_rate) if expressions else None
        self._cues: list[ExpressionCue] = []

    @property
    def end_sample(self) -> int:
        """Timeline sample just after the last audio handed out so far."""
        return self._buffer_start

    @property
    def source_rate(self) -> int | None:
        """The engine's sample rate, once its first chunk arrived."""
        return self._source_rate

    def push(self, chunk: AudioChunk) -> list[Frame]:
        if self.finished:
            return []
        samples = self._resample(chunk)
        aligned_start = self._buffer_start + len(self._buffer)
        chunk_timeline = self.start_sample + self._source_consumed * self.sample_rate // chunk.sample_rate
        self._source_consumed += len(chunk.samples)
        if self._expressions is not None and chunk.text:
            self._cues += self._expressions.chunk_words(chunk.text, chunk_timeline)
        if chunk.text:
            end = self.start_sample + self._source_consumed * self.sample_rate // chunk.sample_rate
            self.text_by_end_sample.append((end, chunk.text))
        marks = tuple(
            PhonemeMark(
                chunk_timeline - aligned_start + m.offset_samples * self.sample_rate // chunk.sample_rate,
                m.phoneme,
                m.alphabet,
                m.duration_samples * self.sample_rate // chunk.sample_rate,
            )
            for m in chunk.phonemes
        )
        visemes = self.animator.push(
            AudioChunk(chunk.turn_id, samples, self.sample_rate, marks, chunk.text), aligned_start
        )
        self._buffer = np.concatenate([self._buffer, samples])
        return self._cue_events() + self._audio_frames(final=False) + self._animation_frames(visemes)

    def finish(self) -> list[Frame]:
        """End of reply: everything held back, the last audio frame flagged SEGMENT_END."""
        if self.finished:
            return []
        if self._expressions is not None:
            self._cues += self._expressions.finish()
        if self._resampler is not None:
            tail = self._resampler.flush()[self._to_skip :]
            self._buffer = np.concatenate([self._buffer, tail])
        frames = self._cue_events() + self._audio_frames(final=True)
        if self._expressions is not None:
            self._cues.append(self._expressions.relax(self.end_sample))
            frames += self._cue_events()
        self.animation_report = self.animator.report()  # before flush() resets it
        frames += self._animation_frames(self.animator.flush())
        self.finished = True
        return frames

    def push_text(self, text: str, final: bool) -> None:
        """The reply's text so far: animators that align it to the audio use it."""
        if not self.finished:
            self.animator.add_text(text, final)
            if self._expressions is not None:
                self._cues += self._expressions.transcript(text, final, self.end_sample + len(self._buffer))

    def poll(self, now_sample: int) -> list[Frame]:
        """Animation frames held for look-ahead that playback at ``now_sample`` is about to reach."""
        if self.finished:
            return []
        return self._cue_events() + self._animation_frames(self.animator.poll(now_sample))

    def cut(self) -> None:
        """Interrupted: send nothing more of this reply."""
        self.animator.reset()
        self.finished = True

    def _cue_events(self) -> list[Frame]:
        cues, self._cues = self._cues, []
        return [Event(cue.to_json(self.turn_id)) for cue in cues]

    def heard_text(self, until_sample: int) -> str:
        return " ".join(text for end, text in self.text_by_end_sample if end <= until_sample)

    def _resample(self, chunk: AudioChunk) -> np.ndarray:
        samples = np.asarray(chunk.samples, dtype=np.float32)
        if chunk.sample_rate == self.sample_rate:
            return samples
        if self._resampler is None or self._source_rate != chunk.sample_rate:
            self._resampler = StreamResampler(chunk.sample_rate, self.sample_rate)
            self._source_rate = chunk.sample_rate
            self._to_skip = self._resampler.delay_samples
        out = self._resampler.process(samples)
        skip = min(self._to_skip, len(out))
        self._to_skip -= skip
        return out[skip:]

    def _audio_frames(self, final: bool) -> list[Frame]:
        if self._encoder is not None:
            return self._opus_frames(self._encoder, final)
        frames: list[Frame] = []
        while len(self._buffer) >= self.frame_samples or (final and len(self._buffer)):
            take = min(self.frame_samples, len(self._buffer))
            flags = Flags.SEGMENT_START if self.sent_audio_frames == 0 else Flags.NONE
            if final and take == len(self._buffer):
                flags |= Flags.SEGMENT_END
            frames.append(AudioOut(float_to_s16le(self._buffer[:take]), timestamp=self._buffer_start, flags=flags))
            self._buffer = self._buffer[take:]
            self._buffer_start += take
            self.sent_audio_frames += 1
        if final and self.sent_audio_frames == 0:
            # An empty reply still opens and closes its segment, so clients see it end.
            frames.append(AudioOut(b"", timestamp=self._buffer_start, flags=Flags.SEGMENT_START | Flags.SEGMENT_END))
            self.sent_audio_frames += 1
        return frames

    def _opus_frames(self, encoder: OpusEncoder, final: bool) -> list[Frame]:
        """Packet n ≥ 1 decodes (after the stream's pre-skip) from start + 960·n − 312."""
        packets = encoder.encode(self._buffer)
        self._buffer_start += len(self._buffer)
        self._buffer = self._buffer[:0]
        if final:
            packets += encoder.flush()
        frames: list[Frame] = []
        for index, packet in enumerate(packets):
            n = self._packets
            flags = Flags.SEGMENT_START if n == 0 else Flags.NONE
            if final and index == len(packets) - 1:
                flags |= Flags.SEGMENT_END
            stamp = opus_packet_timestamp(self.start_sample, n)
            frames.append(AudioOut(packet, timestamp=stamp, flags=flags))
            self._packets += 1
            self.sent_audio_frames += 1
        if final and self.sent_audio_frames == 0:
            frames.append(AudioOut(b"", timestamp=self._buffer_start, flags=Flags.SEGMENT_START | Flags.SEGMENT_END))
            self.sent_audio_frames += 1
        return frames

    def _animation_frames(self, visemes: list[VisemeFrame]) -> list[Frame]:
        """Group evenly spaced viseme frames into as few animation messages as possible."""
        frames: list[Frame] = []
        run: list[VisemeFrame] = []
        step = 0
        for frame in visemes:
            if len(run) == 1:
                step = frame.t_samples - run[0].t_samples
                if step <= 0:  # not on an increasing grid: start a new message
                    frames.append(self._animation(run, 0))
                    run = []
            elif len(run) > 1 and (frame.t_samples - run[-1].t_samples != step or len(run) >= 1000):
                frames.append(self._animation(run, step))
                run = []
            run.append(frame)
        if run:
            frames.append(self._animation(run, step if len(run) > 1 else 0))
        return frames

    def _animation(self, run: list[VisemeFrame], step: int) -> Animation:
        weights = b"".join(quantize(self.map_weights(f.weights, self.weight_set)) for f in run)
        per_frame = len(weights) // len(run)
        self.sent_animation_frames += len(run)
        return Animation(self.weight_set_id, per_frame, max(step, 0), weights, timestamp=run[0].t_samples)
