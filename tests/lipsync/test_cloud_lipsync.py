"""Lips for the cloud engines through a presence session: the real SDKs against the local fakes.

Both services stream the reply's text with its audio; the session hands it to the default
animator, which aligns it and uses the audio it already holds as look-ahead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from presence.client.connection import PresenceClient
from presence.engines.base import Engine
from presence.engines.gemini import GeminiLiveEngine
from presence.engines.openai_realtime import OpenAIRealtimeEngine
from presence.lipsync.aligned import MAX_LOOKAHEAD_MS, MIN_LOOKAHEAD_MS
from presence.testing.fakes import gemini_live_server, openai_realtime_server
from tests.conftest import ServerFactory, silence, speech_like


@contextlib.asynccontextmanager
async def cloud(name: str) -> AsyncIterator[tuple[Engine, str]]:
    """A cloud engine wired to its running fake, and the reply text the fake speaks."""
    if name == "gemini":
        async with gemini_live_server.FakeGeminiLive().running() as gemini:
            yield (
                GeminiLiveEngine(
                    "AIza-test", model="gemini-3.8-live", base_url=gemini.base_url, ssl_context=gemini.client_ssl
                ),
                gemini_live_server.REPLY,
            )
    else:
        async with openai_realtime_server.FakeRealtimeServer().running() as openai:
            yield (
                OpenAIRealtimeEngine("sk-test", model="gpt-realtime-2.1", base_url=openai.base_url),
                openai_realtime_server.REPLY,
            )


def frame_times(received: Any) -> list[int]:
    times = []
    for _, frame in received.animation:
        count = len(frame.weights) // frame.weights_per_frame
        times += [frame.timestamp + i * frame.step_samples for i in range(count)]
    return times


@pytest.mark.parametrize("name", ["gemini", "openai"])
async def test_a_cloud_reply_is_animated_from_its_transcript_with_the_audio_on_hand_as_look_ahead(
    name: str, server_factory: ServerFactory
) -> None:
    async with cloud(name) as (engine, reply), server_factory(engine=engine, confirm_ms=320) as srv:
        client = PresenceClient(srv.url)
        await client.connect()
        audio = np.concatenate([speech_like(0.6), silence(1.0)])
        for offset in range(0, len(audio), 320):
            await client.send_audio(audio[offset : offset + 320])
            await asyncio.sleep(0.02)
        record = await client.wait_for_event(lambda b: b.get("type") == "metrics", 10)
        await client.close()
    assert record["agent_text"] == reply and record["error"] is None
    animation = record["animation"]
    assert animation["text_words"] == len(reply.split()), "every word of the transcript reached the lips"
    # The fakes stream faster than real time, like the services: most frames wait for more
    # audio than the causal animator's 30 ms (all of the cap on an idle machine; how much more
    # depends on when the loaded event loop gets to poll them, so only "more" is asserted).
    assert MIN_LOOKAHEAD_MS < animation["lookahead_ms_p50"] <= MAX_LOOKAHEAD_MS
    assert 0 <= animation["lookahead_ms_min"] <= MAX_LOOKAHEAD_MS
    times = frame_times(client.received)
    start, end = record["reply_start_sample"], record["reply_end_sample"]
    assert times[0] == -(-start // 400) * 400, "frames sit on the session's 60 fps grid"
    assert np.all(np.diff(times) == 400), "no gap, no repeat"
    assert times[-1] >= end - 400
