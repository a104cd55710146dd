"""Expression cues through a real session over a loopback WebSocket (scripted engine)."""

from __future__ import annotations

import itertools

from presence.client.connection import PresenceClient, client_hello
from tests.conftest import ServerFactory, silence, speech_like
from tests.session.test_turns_over_websocket import stream


async def test_a_client_that_asks_gets_each_clause_s_cue_before_the_audio_it_precedes(
    server_factory: ServerFactory,
) -> None:
    reply = "Wonderful, I love it! Would you like to hear more?"
    # A reply spoken at an ordinary rate (50 characters in 3.5 s).
    async with server_factory(speculate_ms=96, confirm_ms=320, scripted_reply=reply, scripted_reply_ms=3500) as srv:
        client = PresenceClient(srv.url, hello={**client_hello(), "features": ["expressions"]})
        agreement = await client.connect()
        assert agreement.expressions
        await stream(client, speech_like(0.6), silence(0.8))
        await client.wait_for_event(lambda b: b.get("type") == "metrics", 8)
        await client.close()
    cues = [(at, body) for at, body in client.received.events if body.get("type") == "expression"]
    assert [body["name"] for _, body in cues] == ["happy", "curious", "neutral"]
    first_audio_at, first_audio = client.received.audio[0]
    assert cues[0][1]["at"] == first_audio.timestamp, "the first clause starts with the reply"
    assert cues[0][0] <= first_audio_at, "and its cue arrives no later than the reply's first audio"
    for (_, body), (_, later) in itertools.pairwise(cues):
        assert body["at"] < later["at"]
    last_audio = client.received.audio[-1][1]
    assert cues[-1][1]["at"] >= last_audio.timestamp, "back to neutral as the reply ends"


async def test_a_client_that_does_not_ask_sees_no_cues_and_no_features_key(server_factory: ServerFactory) -> None:
    async with server_factory(speculate_ms=96, confirm_ms=320) as srv:
        client = PresenceClient(srv.url)
        agreement = await client.connect()
        await stream(client, speech_like(0.6), silence(0.8))
        await client.wait_for_event(lambda b: b.get("type") == "metrics", 5)
        await client.close()
    assert not agreement.expressions and agreement.features == ()
    assert not client.received.events_of("expression")
