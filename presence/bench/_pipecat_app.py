# Pipecat is installed only in the benchmark's own environment, so under presence's mypy its
# types are unknown; the file is checked strictly against that environment instead:
#   mypy --python-executable ~/.cache/presence/bench-pipecat/bin/python presence/bench/_pipecat_app.py
# mypy: disable-error-code="import-not-found,misc,no-any-return"
"""The Pipecat side of ``presence bench pipecat``: a scripted voice bot on Pipecat's WebSocket server.

Run by the *separate* Pipecat environment's Python (it never imports presence, which that
environment does not have)::

    python _pipecat_app.py --port P --replies DIR --think-ms 0 --turn smart

Pipeline: WebSocket input → Silero VAD → user-turn processor → scripted reply → WebSocket
output. The scripted reply stands where an LLM and a TTS would: when Pipecat ends the user's
turn it waits ``--think-ms`` and then pushes the reply audio (``DIR/reply_<n>.pcm``, 24 kHz
s16le mono, written by the benchmark from presence's own scripted voice) as 20 ms
``TTSAudioRawFrame``s, as fast as the pipeline takes them — the same work presence's scripted
engine does. Turn-taking is either Pipecat's default (``--turn smart``: Silero VAD with its
default 0.2 s stop, then the Smart Turn v3 model) or a fixed silence (``--turn silence``:
Silero VAD with ``--stop-secs``, nothing after it), so the two frameworks can be compared at
their defaults and with endpointing equalised.

Wire format: each binary WebSocket message is raw PCM, s16le mono — 16 kHz from the client,
24 kHz to it; after each reply one JSON text message says how many input samples had arrived
when the turn ended. No transcription exists in this pipeline, so the stop strategies are told not to
wait for one (what Pipecat itself does for speech-to-speech services).

When the server is listening it prints ``READY <port>`` on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from loguru import logger
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.transports.websocket.server import (
    SingleClientWebsocketServerParams,
    SingleClientWebsocketServerTransport,
)
from pipecat.turns.user_start import VADUserTurnStartStrategy
from pipecat.turns.user_stop import (
    BaseUserTurnStopStrategy,
    SpeechTimeoutUserTurnStopStrategy,
    TurnAnalyzerUserTurnStopStrategy,
)
from pipecat.turns.user_turn_processor import UserTurnProcessor
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.workers.runner import WorkerRunner

INPUT_RATE = 16_000
OUTPUT_RATE = 24_000
CHUNK_MS = 20


class RawPcmSerializer(FrameSerializer):
    """Binary messages are bare s16le PCM, the thinnest wire format a Pipecat client can use;
    text messages are this bot's JSON notes to the benchmark."""

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if isinstance(frame, OutputAudioRawFrame):
            return frame.audio
        if isinstance(frame, OutputTransportMessageFrame):
            return json.dumps(frame.message)
        return None

    async def deserialize(self, data: str | bytes) -> Frame | None:
        if isinstance(data, bytes) and data:
            return InputAudioRawFrame(audio=data, sample_rate=INPUT_RATE, num_channels=1)
        return None


class InputCounter(FrameProcessor):
    """Counts the input samples that have entered the pipeline (it stands before the VAD)."""

    def __init__(self) -> None:
        super().__init__()
        self.samples = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self.samples += len(frame.audio) // 2
        await self.push_frame(frame, direction)


class ScriptedReply(FrameProcessor):
    """Answers every ended user turn with the next scripted reply, after a fixed think time.

    After each reply it tells the client how many input samples had entered the pipeline when
    the turn ended, so the client can time the frame that ended it (sent after the reply, so
    the message never delays reply audio).
    """

    def __init__(self, replies: list[bytes], think_s: float, counter: InputCounter) -> None:
        super().__init__()
        self._replies = replies
        self._think_s = think_s
        self._counter = counter
        self._turns = 0
        self._speaking: asyncio.Task[None] | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InterruptionFrame) and self._speaking is not None:
            await self.cancel_task(self._speaking)
            self._speaking = None
        await self.push_frame(frame, direction)
        if isinstance(frame, UserStoppedSpeakingFrame):
            self._turns += 1
            self._speaking = self.create_task(self._speak(self._turns, self._counter.samples))

    async def _speak(self, turn: int, ended_at_sample: int) -> None:
        await asyncio.sleep(self._think_s)
        audio = self._replies[turn % len(self._replies)]
        context = f"turn-{turn}"
        step = OUTPUT_RATE * CHUNK_MS // 1000 * 2
        await self.push_frame(TTSStartedFrame(context_id=context))
        for offset in range(0, len(audio), step):
            chunk = audio[offset : offset + step]
            await self.push_frame(
                TTSAudioRawFrame(audio=chunk, sample_rate=OUTPUT_RATE, num_channels=1, context_id=context)
            )
        await self.push_frame(TTSStoppedFrame(context_id=context))
        message = {"type": "turn_end", "turn": turn, "input_samples": ended_at_sample}
        await self.push_frame(OutputTransportMessageFrame(message=message))


def load_replies(folder: Path) -> list[bytes]:
    """``reply_0.pcm`` … ``reply_N.pcm``; turn n speaks ``reply_{n % (N+1)}`` like presence's engine."""
    replies: list[bytes] = []
    while (path := folder / f"reply_{len(replies)}.pcm").exists():
        replies.append(path.read_bytes())
    if not replies:
        raise SystemExit(f"no reply_0.pcm in {folder}")
    return replies


def build_worker(args: argparse.Namespace, ready: asyncio.Event) -> PipelineWorker:
    transport = SingleClientWebsocketServerTransport(
        params=SingleClientWebsocketServerParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            audio_in_sample_rate=INPUT_RATE,
            audio_out_sample_rate=OUTPUT_RATE,
            serializer=RawPcmSerializer(),
        ),
        host="127.0.0.1",
        port=args.port,
    )

    async def on_ready(_transport: SingleClientWebsocketServerTransport) -> None:
        ready.set()

    transport.add_event_handler("on_websocket_ready", on_ready)

    stop: BaseUserTurnStopStrategy
    if args.turn == "smart":
        vad = SileroVADAnalyzer()  # Pipecat's defaults: stop after 0.2 s
        stop = TurnAnalyzerUserTurnStopStrategy(turn_analyzer=LocalSmartTurnAnalyzerV3(), wait_for_transcript=False)
    else:
        vad = SileroVADAnalyzer(params=VADParams(stop_secs=args.stop_secs))
        stop = SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.0, wait_for_transcript=False)
    turns = UserTurnProcessor(user_turn_strategies=UserTurnStrategies(start=[VADUserTurnStartStrategy()], stop=[stop]))
    counter = InputCounter()
    pipeline = Pipeline(
        [
            transport.input(),
            counter,
            VADProcessor(vad_analyzer=vad),
            turns,
            ScriptedReply(load_replies(Path(args.replies)), args.think_ms / 1000, counter),
            transport.output(),
        ]
    )
    return PipelineWorker(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=INPUT_RATE, audio_out_sample_rate=OUTPUT_RATE),
        idle_timeout_secs=None,  # the benchmark's connection may sit idle between its turns
        enable_rtvi=False,  # the client speaks raw PCM, not RTVI
    )


async def serve(args: argparse.Namespace) -> None:
    ready = asyncio.Event()
    worker = build_worker(args, ready)
    runner = WorkerRunner(handle_sigint=False, handle_sigterm=True)
    await runner.add_workers(worker)
    run = asyncio.create_task(runner.run())
    await asyncio.wait([run, asyncio.create_task(ready.wait())], return_when=asyncio.FIRST_COMPLETED)
    if ready.is_set():
        print(f"READY {args.port}", flush=True)
    await run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--replies", required=True, help="folder of reply_<n>.pcm (24 kHz s16le mono)")
    parser.add_argument("--think-ms", type=int, default=0)
    parser.add_argument("--turn", choices=["smart", "silence"], default="smart")
    parser.add_argument("--stop-secs", type=float, default=0.2, help="VAD stop time for --turn silence")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level=args.log_level)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
