"""The page over WebRTC (?transport=webrtc) in real headless Chromium against a real
`presence serve` (scripted engine): the fake microphone's TIMIT speech goes out as RTP Opus, the
reply comes back as RTP Opus played by the browser, the mouth moves only while it plays; a
barge-in silences the reply at once; a dropped peer connection ends the server's session."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from presence.bench.g2g import LEAD_S
from tests.web.browser import chromium, compose, presence_server, write_wav
from tests.web.test_browser import PIXEL_PROBE, SCRIPTED, av_offset_ms, open_page, wait_for

pytestmark = pytest.mark.browser

LOUD = 0.02  # rms of reply audio on the remote track (the scripted voice peaks near 0.3)


def loud_spans(loudness: list[dict[str, Any]], gap_ms: float = 150) -> list[tuple[float, float]]:
    """Stretches of loud reply audio on the page's clock, merging gaps shorter than ``gap_ms``."""
    spans: list[tuple[float, float]] = []
    for x in loudness:
        if x["rms"] < LOUD:
            continue
        if spans and x["perfMs"] - spans[-1][1] < gap_ms:
            spans[-1] = (spans[-1][0], x["perfMs"])
        else:
            spans.append((x["perfMs"], x["perfMs"]))
    return spans


def sessions_active(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("presence_sessions_active "):
                return float(line.split()[1])
    raise AssertionError("no presence_sessions_active gauge")


def test_a_spoken_question_over_webrtc_is_answered_with_a_mouth_that_moves_only_while_it_plays(
    tmp_path: Path, timit_dir: Path
) -> None:
    audio, _ = compose(timit_dir, [("dr1-fvmh0/sa1", 4.0)], lead_s=LEAD_S)
    wav = write_wav(tmp_path / "question.wav", audio)
    with presence_server(tmp_path, *SCRIPTED) as server, chromium(wav) as context:
        page = open_page(context, server.url, "&transport=webrtc")
        wait_for(page, "() => presence.state.connection === 'open'", 15, "the WebRTC session to open")
        assert page.evaluate("() => presence.state.agreement.audio_out.codec") == "opus"
        page.evaluate(PIXEL_PROBE)
        turn = wait_for(
            page,
            "() => [...presence.turns.values()].find(t => t.server && t.firstMouthPerfMs !== undefined)",
            25,
            "a reply with a measured first mouth movement",
        )
        wait_for(page, "() => presence.rtc.net.jitterMs !== undefined", 5, "getStats() numbers")
        time.sleep(0.6)  # the reply's end, then silence: both are measured below
        data = page.evaluate(
            """() => ({frames: presence.frames, loudness: presence.rtc.loudness, pixels: window.mouthPixels,
                 hud: document.getElementById('stats').textContent, errors: presence.state.errors,
                 origin: presence.rtc.origin})"""
        )
    assert not page.errors, page.errors
    assert data["origin"] is not None, "the server told the page its RTP clock"
    assert data["hud"].startswith("transport WebRTC") and "RTT" in data["hud"] and "loss" in data["hud"]
    spans = loud_spans(data["loudness"])
    assert spans, "the reply was heard on the remote track"
    start, end = spans[0][0], spans[-1][1]
    reply_ms = (turn["server"]["reply_end_sample"] - turn["server"]["reply_start_sample"]) / 48
    # The whole reply played, in real time (a loaded machine may stretch it; NetEQ never drops it).
    assert reply_ms - 300 < end - start < reply_ms + 800, (end - start, reply_ms)
    pixels = np.array(data["pixels"])
    during = pixels[(pixels[:, 0] > start) & (pixels[:, 0] < end)]
    before = pixels[pixels[:, 0] < start - 150]
    after = pixels[pixels[:, 0] > end + 300]  # the quiet tail under LOUD still moves the lips a little
    assert len(during) and during[:, 1].max() > 100, "the mouth visibly opens while the reply plays"
    assert len(before) and before[:, 1].max() == 0, "the mouth is shut before the reply"
    assert len(after) and after[:, 1].max() == 0, "the mouth is shut after the reply"
    offset = av_offset_ms(data["frames"], data["loudness"], start - 200, end + 200)
    print(f"\nWebRTC: A/V offset, mouth behind loudness {offset:+.0f} ms; HUD: {data['hud']}")
    assert abs(offset) <= 100, "the mouth follows the audio the browser plays (RTP timestamps → timeline)"


def test_a_barge_in_over_webrtc_silences_the_reply_at_once(tmp_path: Path, timit_dir: Path) -> None:
    audio, _ = compose(timit_dir, [("dr1-fvmh0/sa1", 1.6), ("dr1-fvmh0/sa2", 3.0)])
    wav = write_wav(tmp_path / "barge_in.wav", audio)
    server_args = (*SCRIPTED, "--scripted-reply-ms", "8000")
    with presence_server(tmp_path, *server_args) as server, chromium(wav) as context:
        page = open_page(context, server.url, "&transport=webrtc")
        wait_for(page, "() => presence.state.connection === 'open'", 15, "the WebRTC session to open")
        page.evaluate(
            """() => { window.mutedLog = [];
              setInterval(() => window.mutedLog.push([performance.now(), presence.rtc.audio?.muted ?? null]), 10); }"""
        )
        barge_in = "e => e.type === 'interrupt' && e.reason !== 'retracted'"  # not a dropped speculation
        wait_for(page, f"() => presence.state.events.some({barge_in})", 25, "a barge-in")
        wait_for(  # the loudness log reaches well past the cut
            page,
            f"() => {{ const cut = presence.state.events.filter({barge_in}).pop();"
            " return presence.rtc.loudness.some(x => x.perfMs > cut.receivedAtMs + 560); }",
            5,
            "the track's loudness after the cut",
        )
        # The barge-in is a question too: its reply is heard, unmuted.
        wait_for(page, "() => presence.rtc.audio.muted === false && presence.rtc.cut === null", 15, "the next reply")
        data = page.evaluate(
            "() => ({events: presence.state.events, loudness: presence.rtc.loudness, muted: window.mutedLog})"
        )

    def loud_before(e: dict[str, Any]) -> bool:
        at = e["receivedAtMs"]
        return max((x["rms"] for x in data["loudness"] if at - 300 < x["perfMs"] < at), default=0) > LOUD

    barge_ins = [e for e in data["events"] if e["type"] == "interrupt" and e.get("reason") != "retracted"]
    interrupt = next((e for e in barge_ins if loud_before(e)), None)
    assert interrupt is not None, f"no barge-in while the reply played: {barge_ins}"
    at = interrupt["receivedAtMs"]
    # Muted at once; unmuted again as soon as what NetEQ held of the cut reply has played out,
    # which may be within a few ms when it held little (so only the first sample must be muted).
    muted = [m for t, m in data["muted"] if at < t < at + 30]
    assert muted and muted[0], "the page stopped playback as the interrupt arrived"
    before = [x["rms"] for x in data["loudness"] if at - 500 < x["perfMs"] < at]
    after = [x["rms"] for x in data["loudness"] if at + 250 < x["perfMs"] < at + 550]
    assert max(before) > LOUD, "the reply was playing when the user barged in"
    assert after and max(after) < LOUD, "the server flushed its queued reply audio: the track fell silent"


def test_a_dropped_peer_connection_ends_the_session_on_the_server(tmp_path: Path, timit_dir: Path) -> None:
    audio, _ = compose(timit_dir, [("dr1-fvmh0/sa1", 1.0)])
    wav = write_wav(tmp_path / "short.wav", audio)
    with presence_server(tmp_path, *SCRIPTED) as server, chromium(wav) as context:
        page = open_page(context, server.url, "&transport=webrtc")
        wait_for(page, "() => presence.state.connection === 'open'", 15, "the WebRTC session to open")
        wait_for(page, "() => presence.rtc.pc.connectionState === 'connected'", 10, "ICE and DTLS")
        assert sessions_active(server.port) == 1
        page.evaluate("() => presence.rtc.pc.close()")
        deadline = time.monotonic() + 10
        while sessions_active(server.port) != 0:
            assert time.monotonic() < deadline, "the server kept the dropped session"
            time.sleep(0.05)
    log = server.log.read_text()
    assert "Traceback" not in log, log
