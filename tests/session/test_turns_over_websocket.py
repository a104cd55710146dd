"""Turn-taking through a real session: speculation held, released, cancelled; barge-in; back-channels.

Audio is streamed in real time by the Python client over a loopback WebSocket to a server
with the scripted engine; the energy VAD makes the synthetic signals unambiguous.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from presence.client.connection import PresenceClient
from presence.engines.base import SessionOptions, Transcript, TurnEvent, TurnEventKind
from presence.engines.scripted import Script, ScriptedEngine, ScriptedSession
from tests.conftest import ServerFactory, silence, speech_like

FRAME = 320  # 20 ms at 16 kHz


async def stream(client: PresenceClient, *parts: np.ndarray) -> None:
    audio = np.concatenate(parts)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i, offset in enumerate(range(0, len(audio), FRAME)):
        delay = start + i * 0.02 - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await client.send_audio(audio[offset : offset + FRAME])


def states(client: PresenceClient) -> list[str]:
    return [body["state"] for body in client.received.events_of("turn")]


def metrics(client: PresenceClient) -> list[dict[str, Any]]:
    return client.received.events_of("metrics")


async def test_speculative_reply_is_released_when_the_turn_is_confirmed(server_factory: ServerFactory) -> None:
    async with server_factory(speculate_ms=96, confirm_ms=320) as srv:
        client = PresenceClient(srv.url)
        await client.connect()
        await stream(client, speech_like(0.6), silence(0.8))
        await client.wait_for_event(lambda b: b.get("type") == "metrics", 5)
        await client.close()
    assert states(client)[:4] == ["user_speaking", "paused", "speculating", "responding"]
    record = metrics(client)[0]
    # The engine started during the pause, before confirmation; nothing left before it.
    assert record["engine_first_audio_ms"] < record["turn_confirmed_ms"] <= record["first_audio_sent_ms"]
    first_audio_at = client.received.audio[0][0]
    confirmed_at = next(at for at, body in client.received.events if body.get("state") == "responding")
    assert first_audio_at >= confirmed_at


async def test_speculative_reply_is_dropped_when_the_user_resumes(server_factory: ServerFactory) -> None:
    engine_think_ms = 50  # the reply is ready during the pause, so dropping it is what is tested
    async with server_factory(speculate_ms=96, confirm_ms=500, scripted_think_ms=engine_think_ms) as srv:
        client = PresenceClient(srv.url)
        await client.connect()
        await stream(client, speech_like(0.5), silence(0.3), speech_like(0.5, seed=1))

        def abandoned(_: Any) -> bool:  # speculating, then the user went on
            seen = states(client)
            return "speculating" in seen and "user_speaking" in seen[seen.index("speculating") :]

        await client.wait_for_event(abandoned, 5)
        assert not client.received.audio, "nothing of the abandoned speculation reached the client"
        await stream(client, silence(0.9))
        await client.wait_for_event(lambda b: b.get("type") == "metrics", 5)
        await client.close()
    record = metrics(client)[0]
    assert record["abandoned_speculations"] == 1
    assert record["turn_id"] == 1, "the user's pause did not split the turn"
    starts = [frame for _, frame in client.received.audio if frame.flags & 1]
    assert len(starts) == 1, "exactly one reply segment was sent"


async def test_barge_in_cuts_the_reply_and_reports_the_cut_point(server_factory: ServerFactory) -> None:
    async with server_factory(scripted_reply_ms=4000, min_barge_in_ms=150, max_lead_ms=300) as srv:
        client = PresenceClient(srv.url)
        await client.connect()
        await stream(client, speech_like(0.5), silence(0.4))
        await client.wait_for_event(lambda b: b.get("state") == "responding", 5)
        await stream(client, silence(0.5), speech_like(0.4, seed=2), silence(0.6))
        interrupt = await client.wait_for_event(lambda b: b.get("type") == "interrupt", 5)
        await client.wait_for_event(lambda b: b.get("type") == "metrics" and b.get("turn_id") == 2, 5)
        engine_session = srv.hub.engine.sessions[0]  # type: ignore[attr-defined]
        await client.close()
    first = metrics(client)[0]
    assert first["interrupted"] is True
    reply_start = first["reply_start_sample"]
    assert reply_start < interrupt["cut_at"] < reply_start + 4000 * 24
    assert first["heard_samples"] == interrupt["cut_at"] - reply_start
    # The engine was told how much was heard, at its own rate (24 kHz for the scripted engine).
    assert engine_session.interrupts[0].heard_samples == first["heard_samples"]
    # Only a bounded lead of audio had been sent past the cut point.
    sent_end = max(
        f.timestamp + len(f.data) // 2 for _, f in client.received.audio if f.timestamp < interrupt["cut_at"]
    )
    assert sent_end - interrupt["cut_at"] <= 0.3 * 24_000 + 960
    assert "user_speaking" in states(client)[states(client).index("responding") :]


async def test_a_short_back_channel_does_not_interrupt(server_factory: ServerFactory) -> None:
    async with server_factory(scripted_reply_ms=2500, min_barge_in_ms=250) as srv:
        client = PresenceClient(srv.url)
        await client.connect()
        await stream(client, speech_like(0.5), silence(0.4))
        await client.wait_for_event(lambda b: b.get("state") == "responding", 5)
        await stream(client, silence(0.3), speech_like(0.12, seed=3), silence(0.3))
        await client.wait_for_event(lambda b: b.get("type") == "metrics", 5)
        await client.close()
    assert not client.received.events_of("interrupt")
    assert metrics(client)[0]["interrupted"] is False


class TranscribingSession(ScriptedSession):
    """Like a recogniser: the user's final transcript comes when the turn is confirmed."""

    async def turn_event(self, event: TurnEvent) -> None:
        await super().turn_event(event)
        if event.kind is TurnEventKind.TURN_CONFIRMED:
            await self._outputs.put(Transcript("user", "what time is it", True, event.turn_id))


class TranscribingEngine(ScriptedEngine):
    async def open_session(self, options: SessionOptions) -> ScriptedSession:
        return TranscribingSession(self.script, self.clock, self.sessions)


async def test_the_users_transcript_precedes_a_speculative_reply_that_finished_before_confirmation(
    server_factory: ServerFactory,
) -> None:
    # A 200 ms reply with no think time is complete (ended, even) long before the 500 ms
    # confirmation; the user's words must still reach the client first and land in the record.
    engine = TranscribingEngine(Script(think_ms=0, reply_ms=200, pacing="burst"))
    async with server_factory(engine=engine, speculate_ms=96, confirm_ms=500) as srv:
        client = PresenceClient(srv.url)
        await client.connect()
        await stream(client, speech_like(0.6), silence(1.2))
        record = await client.wait_for_event(lambda b: b.get("type") == "metrics", 5)
        await client.close()
    assert record["user_text"] == "what time is it"
    order = [(b["type"], b.get("role")) for b in client.received.events_of("transcript")]
    assert order[:2] == [("transcript", "user"), ("transcript", "agent")]
    user_at = next(at for at, b in client.received.events if b.get("type") == "transcript" and b["role"] == "user")
    assert user_at <= client.received.audio[0][0], "before the first reply audio frame"


async def test_a_released_reply_goes_out_chunk_by_chunk_not_after_the_whole_burst_is_framed(
    server_factory: ServerFactory,
) -> None:
    # A speculative 1 s reply is held in full, then released at once at confirmation. The
    # socket writer must get its turn between chunks, or the first frame would wait for all.
    async with server_factory(speculate_ms=96, confirm_ms=320, scripted_reply_ms=1000) as srv:
        client = PresenceClient(srv.url)
        await client.connect()
        await stream(client, speech_like(0.6), silence(0.8))
        await client.wait_for_event(lambda b: b.get("type") == "metrics", 5)
        peaks = [transport.peak_queue for transport in srv.hub.transports]
        await client.close()
    assert len(client.received.audio) >= 50, "the whole reply arrived"
    assert peaks and max(peaks) <= 8, f"the send queue held {peaks} frames at its peak"


async def test_an_early_release_the_user_talks_over_yields_and_one_reply_answers_the_whole_turn(
    server_factory: ServerFactory,
) -> None:
    # A short confirmation (200 ms) stands in for an optimistic release; the user goes on
    # 300 ms after it, well inside the yield window, with a phrase shorter than min_barge_in_ms
    # would need: not a barge-in, the same turn.
    async with server_factory(
        speculate_ms=96, confirm_ms=200, yield_window_ms=1500, min_barge_in_ms=400, scripted_reply_ms=3000
    ) as srv:
        client = PresenceClient(srv.url)
        await client.connect()
        await stream(client, speech_like(0.5), silence(0.5))
        await client.wait_for_event(lambda b: b.get("state") == "responding", 5)
        assert client.received.audio, "the reply was released and is playing"
        resumed_at = asyncio.get_running_loop().time()
        resume = asyncio.create_task(stream(client, speech_like(0.3, seed=4)))
        interrupt = await client.wait_for_event(lambda b: b.get("type") == "interrupt", 5)
        yielded_after_s = asyncio.get_running_loop().time() - resumed_at
        await resume
        frames_at_cut = len(client.received.audio)
        await stream(client, silence(0.6))
        final = await client.wait_for_event(lambda b: b.get("type") == "metrics", 5)
        engine = srv.hub.engine.sessions[0]  # type: ignore[attr-defined]
        events = [(e.kind, e.turn_id) for e in engine.events]
        await client.close()
    assert interrupt["reason"] == "yield" and interrupt["turn_id"] == 1
    assert yielded_after_s < 1.0, f"the agent yielded {yielded_after_s:.2f} s after the user went on"
    assert engine.interrupts[0].turn_id == 1 and engine.interrupts[0].heard_samples > 0
    kinds = [kind for kind, _ in events]
    assert kinds.count(TurnEventKind.TURN_RESUMED) == 1
    assert kinds.index(TurnEventKind.TURN_RESUMED) < len(kinds) - 1 - kinds[::-1].index(TurnEventKind.TURN_CONFIRMED)
    assert {turn for _, turn in events} == {1}, "one turn throughout: the yield did not start a new one"
    assert final["turn_id"] == 1 and final["yields"] == 1 and final["interrupted"] is False
    assert final["first_audio_sent_ms"] is not None, "the whole turn got its reply"
    # Nothing of the yielded reply was sent after the cut: every later audio frame belongs to
    # the new reply, which starts its own segment at or after the cut.
    later = [frame for _, frame in client.received.audio[frames_at_cut:]]
    assert later and later[0].flags & 1, "the next audio is a new reply segment"
    assert all(frame.timestamp >= interrupt["cut_at"] for frame in later)
    segment_starts = [frame for _, frame in client.received.audio if frame.flags & 1]
    assert len(segment_starts) == 2
