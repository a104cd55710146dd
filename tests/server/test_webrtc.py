"""The WebRTC transport: an aiortc peer on loopback holds a conversation with the scripted
engine through the same session the WebSocket serves (RTP Opus both ways, events and
animation on their data channels), barges in, and drops its peer connection."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from presence.client.webrtc import WebRtcClient
from presence.protocol.errors import CloseCode
from presence.protocol.frames import AudioOut, Flags
from presence.protocol.hello import OPUS
from presence.server.auth import mint_token
from presence.server.webrtc import ImmediateFrames, Pacer, ReplyTrack
from tests.conftest import ServerFactory, silence, speech_like

RATE = 48_000


def utterance(speech_s: float, pause_s: float) -> np.ndarray:
    return np.concatenate([speech_like(speech_s, rate=RATE), silence(pause_s, rate=RATE)])


def gauge(srv: object, name: str) -> float:
    value = srv.hub.metrics.registry.get_sample_value(name)  # type: ignore[attr-defined]
    return float(value or 0.0)


async def test_a_conversation_over_webrtc_hears_the_reply_over_rtp_with_its_animation_and_events(
    server_factory: ServerFactory,
) -> None:
    async with server_factory(confirm_ms=320, scripted_reply_ms=800) as srv:
        client = WebRtcClient(srv.http)
        agreement = await client.connect()
        assert agreement.audio_out.codec == OPUS  # the reply's Opus packets go onto RTP as they are
        client.say(utterance(0.6, 0.1))
        said_at = time.monotonic()
        await client.wait_for_event(lambda b: b.get("type") == "metrics", 10)
        assert client.heard.events_of("turn") and client.heard.events_of("transcript")
        loud = client.heard.loud_since(said_at)
        assert loud, "the reply was heard over RTP"
        assert client.heard.animation, "animation frames came over their data channel"
        first_anim = client.heard.animation[0][1]
        assert first_anim.frame_count >= 1
        clock = client.heard.events_of("rtp_clock")
        assert clock and clock[0]["rate"] == RATE, "the page is told how RTP timestamps map to the timeline"
        peer = next(iter(srv.hub.peers))
        receiver = peer.pc.getTransceivers()[0].receiver
        assert isinstance(receiver._RTCRtpReceiver__jitter_buffer, ImmediateFrames), "aiortc's 80 ms buffer is out"
        await client.wait_for(lambda: len(peer.track) == 0, 5)  # the pacer has let the last packet go
        released = [pts for pts, _ in peer.track.released]
        assert released == sorted(released) and len(released) >= 800 // 20 - 2, "the whole reply, in order"
        # Released in real time, as the timeline says: paced, not burst (the engine bursts).
        (first_pts, first_at), (last_pts, last_at) = peer.track.released[0], peer.track.released[-1]
        # (A loaded machine stretches it: the upper bound is loose; a burst would take ~0.)
        assert (last_pts - first_pts) / RATE - 0.05 < last_at - first_at < (last_pts - first_pts) / RATE + 0.8
        assert len(client.heard.loud_since(said_at)) >= 20, "most of the reply's 40 packets were heard loud"
        await client.close()
        await asyncio.wait_for(peer.finished.wait(), 10)
    assert gauge(srv, "presence_sessions_active") == 0


async def test_barge_in_over_webrtc_flushes_queued_reply_audio(server_factory: ServerFactory) -> None:
    # A long reply, so the user can interrupt it; the server holds up to max_lead_ms of it.
    async with server_factory(confirm_ms=320, scripted_reply_ms=4000, min_barge_in_ms=200) as srv:
        client = WebRtcClient(srv.http)
        await client.connect()
        client.say(utterance(0.6, 0.1))
        await client.wait_for(lambda: len(client.heard.loud_since(0)) > 10, 10)
        peer = next(iter(srv.hub.peers))
        client.say(utterance(0.8, 0.6))
        interrupt = await client.wait_for_event(lambda b: b.get("type") == "interrupt", 10)
        interrupted_at = time.monotonic()
        assert peer.track.flushed > 0, "reply audio queued past the cut was dropped server-side"
        assert interrupt["sent_until"] == peer.track.sent_until, "the page learns where the sent audio ends"
        # Nothing from the cut on ever went out (a packet's width of slack for the pacer's anchor).
        assert all(pts < interrupt["cut_at"] + 960 for pts, _ in peer.track.released)
        # What still arrives of the cut reply is what was on the wire: a jitter buffer's worth.
        await client.wait_for_event(lambda b: b.get("type") == "metrics", 10)
        origin = peer.track.released[0][0]  # the client's pts count from the first packet it got
        next_reply = min((pts for pts, _ in peer.track.released if pts >= interrupt["cut_at"] + 960), default=2**62)
        late = [
            when
            for when, pts, rms in client.heard.audio
            if when > interrupted_at + 0.5 and rms > 0.01 and pts + origin < next_reply
        ]
        assert not late, f"the cut reply was still heard {late[-1] - interrupted_at:.2f} s after the interrupt"
        await client.close()
        await asyncio.wait_for(peer.finished.wait(), 10)


async def test_a_dropped_peer_connection_ends_the_session_cleanly(server_factory: ServerFactory) -> None:
    async with server_factory(confirm_ms=320, scripted_reply_ms=600) as srv:
        client = WebRtcClient(srv.http)
        await client.connect()
        client.say(utterance(0.4, 0.1))
        await client.wait_for(lambda: bool(client.heard.events_of("turn")), 10)
        peer = next(iter(srv.hub.peers))
        assert gauge(srv, "presence_sessions_active") == 1
        assert len(srv.hub.engine.sessions) == 1  # type: ignore[attr-defined]
        await client.pc.close()  # gone without a goodbye on the events channel
        await asyncio.wait_for(peer.finished.wait(), 10)
        assert not srv.hub.peers
        assert gauge(srv, "presence_sessions_active") == 0
        assert peer.close_code == CloseCode.GOING_AWAY
        assert peer.session is not None and all(task.done() for task in peer.session.tasks)
        assert srv.hub.engine.sessions == [], "the engine session was closed"  # type: ignore[attr-defined]
        assert srv.hub.admission.sessions == 0
        await client.close()


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def test_signalling_refuses_with_the_websockets_close_codes(server_factory: ServerFactory) -> None:
    async with server_factory() as srv:
        url = f"{srv.http}/v1/webrtc"
        offer = json.dumps({"type": "offer", "sdp": "v=0\r\n", "hello": {}}).encode()
        status, body = await asyncio.to_thread(_post, url, offer, {})
        assert (status, body["code"]) == (401, CloseCode.UNAUTHORIZED)
        status, body = await asyncio.to_thread(_post, url, offer, {"Origin": "https://evil.example"})
        assert (status, body["code"]) == (403, CloseCode.FORBIDDEN_ORIGIN)
        assert srv.hub.policy.secret is not None
        token = mint_token(srv.hub.policy.secret, time.time(), 60)
        authed = f"{url}?token={token}"
        status, body = await asyncio.to_thread(_post, authed, b"{not json", {})
        assert (status, body["code"]) == (400, CloseCode.INVALID_PAYLOAD)
        status, body = await asyncio.to_thread(_post, authed, b"x" * (70 * 1024), {})
        assert (status, body["code"]) == (413, CloseCode.MESSAGE_TOO_BIG)
        status, body = await asyncio.to_thread(_post, authed, offer, {})
        assert status == 400 and body["code"] in (CloseCode.UNSUPPORTED_VERSION, CloseCode.INVALID_PAYLOAD)
        assert srv.hub.admission.sessions == 0 and srv.hub.admission.pending == 0
        assert gauge(srv, "presence_sessions_active") == 0


def test_the_pacer_releases_on_the_timeline_and_re_anchors_when_late() -> None:
    pacer = Pacer(RATE, slack_s=0.1)
    assert pacer.due(48_000, 10.0) == 10.0
    assert pacer.due(48_960, 10.0) == pytest.approx(10.02)
    assert pacer.due(96_000, 10.5) == pytest.approx(11.0)  # a reply placed later waits for its place
    assert pacer.due(96_960, 11.07) == pytest.approx(11.02)  # a busy loop: catch up, keep the anchor
    assert pacer.due(100_000, 13.0) == 13.0  # late (the engine stalled): play now, not in a burst
    assert pacer.due(100_960, 13.0) == pytest.approx(13.02)


def test_the_reply_track_flushes_from_the_cut_and_keeps_what_comes_before() -> None:
    track = ReplyTrack()
    track.push(AudioOut(b"\x01", timestamp=9_600, flags=Flags.SEGMENT_START))
    for n in range(1, 10):
        track.push(AudioOut(b"\x01", timestamp=9_600 + 960 * n - 312))
    assert len(track) == 10
    assert track.flush(9_600 + 960 * 5 - 312) == 5
    assert len(track) == 5
    track.push(AudioOut(b"", timestamp=0, flags=Flags.SEGMENT_START | Flags.SEGMENT_END))
    assert len(track) == 5  # an empty reply's marker has no sound to send
