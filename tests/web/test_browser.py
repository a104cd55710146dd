"""The web client in real headless Chromium against a real `presence serve` (scripted engine).

A fake microphone plays TIMIT speech; the tests check what the page really does: reply audio
scheduled, the mouth open on the canvas while it plays and shut in silence, an interruption
dropping queued audio, reconnection, and clear messages for errors. Timings are printed
(run with -s), never asserted.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from presence.audio.espeak import Espeak, Voice
from presence.audio.pcm import resample
from presence.bench.answers import on_topic
from presence.bench.g2g import LEAD_S, file_start_perf_ms
from tests.conftest import REPO
from tests.web.browser import chromium, compose, presence_server, write_wav

pytestmark = pytest.mark.browser

SCRIPTED = ("--engine", "scripted", "--vad", "energy")

# Installed in the page after the app: after every rendered frame, count cavity-coloured
# pixels in the mouth region of the canvas (what a viewer sees, not what the code meant).
PIXEL_PROBE = """() => {
  const canvas = document.getElementById("avatar");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const r = presence.avatar.mouthRegion();
  window.mouthPixels = [];
  const probe = () => {
    const d = ctx.getImageData(r.x, r.y, r.w, r.h).data;
    let n = 0;
    const near = (i, [r, g, b]) => Math.abs(d[i] - r) < 6 && Math.abs(d[i + 1] - g) < 6 && Math.abs(d[i + 2] - b) < 6;
    for (let i = 0; i < d.length; i += 4) if (near(i, [58, 13, 18])) n++;
    window.mouthPixels.push([performance.now(), n]);
    requestAnimationFrame(probe);
  };
  requestAnimationFrame(probe);
}"""


def wait_for(page: Any, predicate: str, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = page.evaluate(predicate)
        if value:
            return value
        time.sleep(0.05)
    state = page.evaluate(
        "() => ({status: document.getElementById('status').textContent, turn: presence.state.turnState})"
    )
    pytest.fail(f"timed out waiting for {what}; page state {state}")


def open_page(context: Any, url: str, query: str = "", face: str = "2d") -> Any:
    """The page with the 2D face pinned (what PIXEL_PROBE reads) unless ``face="default"``."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    # Audio starts from page code (autostart), not from page.evaluate, which would count as a gesture.
    page.goto(url + "?autostart=1&processing=0" + query + ("&avatar=2d" if face == "2d" else ""))
    return page


def av_offset_ms(frames: list[dict[str, Any]], loudness: list[dict[str, Any]], t0: float, t1: float) -> float:
    """Lag (ms) of mouth openness behind reply loudness on the page's clock; + = mouth late."""
    grid = np.arange(t0, t1, 5.0)
    f_t = np.array([f["perfMs"] for f in frames])
    f_v = np.array([f["openness"] for f in frames])
    l_t = np.array([x["perfMs"] for x in loudness])
    l_v = np.array([x["rms"] for x in loudness])
    mouth = np.interp(grid, f_t, f_v)
    loud = np.interp(grid, l_t, l_v)
    mouth, loud = mouth - mouth.mean(), loud - loud.mean()
    lags = range(-20, 21)  # ±100 ms in 5 ms steps
    scores = [float(np.dot(np.roll(mouth, -lag), loud)) for lag in lags]
    return 5.0 * list(lags)[int(np.argmax(scores))]


@pytest.mark.parametrize("codec", ["opus", "pcm_s16le"])
def test_a_spoken_question_gets_reply_audio_with_a_mouth_that_moves_only_while_it_plays(
    tmp_path: Path, timit_dir: Path, codec: str
) -> None:
    audio, marks = compose(timit_dir, [("dr1-fvmh0/sa1", 4.0)], lead_s=LEAD_S)
    wav = write_wav(tmp_path / "question.wav", audio)
    with presence_server(tmp_path, *SCRIPTED) as server, chromium(wav) as context:
        page = open_page(context, server.url, "" if codec == "opus" else "&codec=pcm")
        wait_for(page, "() => presence.state.connection === 'open'", 15, "the session to open")
        out = page.evaluate("() => presence.state.agreement.audio_out")
        assert out["codec"] == codec, "the page asks for Opus replies unless told otherwise"
        page.evaluate(PIXEL_PROBE)
        turn = wait_for(
            page,
            "() => [...presence.turns.values()].find(t => t.server && t.firstMouthPerfMs !== undefined)",
            20,
            "a reply with a measured first mouth movement",
        )
        time.sleep(0.5)
        data = page.evaluate(
            """() => ({frames: presence.frames, loudness: presence.playback.loudness, pixels: window.mouthPixels,
                 firstBlock: presence.capture.firstBlockPerfMs, firstSound: presence.capture.firstSoundSample,
                 played: presence.playback.jitter.stats.played, opus: presence.opusReplies.stats,
                 errors: presence.state.errors})"""
        )
    assert not page.errors, page.errors
    assert data["played"] > 0, "reply audio was scheduled for output"
    if codec == "opus":
        assert data["opus"]["packets"] > 0 and data["opus"]["errors"] == 0, "decoded by WebCodecs"
    heard = turn["firstHeardPerfMs"]
    reply_ms = turn["server"]["reply_end_sample"] - turn["server"]["reply_start_sample"]
    reply_end = heard + reply_ms / (out["sample_rate"] / 1000)
    pixels = np.array(data["pixels"])
    during = pixels[(pixels[:, 0] > heard) & (pixels[:, 0] < reply_end)]
    before = pixels[pixels[:, 0] < heard - 100]
    after = pixels[pixels[:, 0] > reply_end + 150]
    assert len(during) and during[:, 1].max() > 100, "the mouth visibly opens while the reply plays"
    assert len(before) and before[:, 1].max() == 0, "the mouth is shut before the reply"
    assert len(after) and after[:, 1].max() == 0, "the mouth is shut after the reply"

    speech_end_wav = file_start_perf_ms(data, audio) + marks[0].end_s * 1000
    offset = av_offset_ms(data["frames"], data["loudness"], heard - 200, reply_end + 200)
    scheduled = turn["firstScheduledPerfMs"] - speech_end_wav
    print(
        f"\n(a) speech end in WAV → first reply sample scheduled: {scheduled:.0f} ms"
        f" (heard {heard - speech_end_wav:.0f} ms)"
        f"\n(b) speech end in WAV → first open-mouth frame: {turn['firstMouthPerfMs'] - speech_end_wav:.0f} ms"
        f"\n(c) A/V offset, mouth behind loudness: {offset:+.0f} ms"
        f"\npage waterfall (from the page VAD's speech end): {turn['stages']}"
    )


def test_an_interruption_drops_the_queued_reply_audio(tmp_path: Path, timit_dir: Path) -> None:
    audio, _ = compose(timit_dir, [("dr1-fvmh0/sa1", 1.6), ("dr1-fvmh0/sa2", 3.0)])
    wav = write_wav(tmp_path / "barge_in.wav", audio)
    server_args = (*SCRIPTED, "--scripted-reply-ms", "8000", "--max-lead-ms", "4000")
    with presence_server(tmp_path, *server_args) as server, chromium(wav) as context:
        page = open_page(context, server.url)
        wait_for(page, "() => presence.state.connection === 'open'", 15, "the session to open")
        page.evaluate(
            """() => { window.queueLog = [];
              presence.playback.node.port.addEventListener('message', e => {
                if (e.data.type === 'status') window.queueLog.push([performance.now(), e.data.queued]); }); }"""
        )
        wait_for(page, "() => presence.state.events.some(e => e.type === 'interrupt')", 25, "an interrupt event")
        time.sleep(0.4)
        data = page.evaluate(
            "() => ({log: window.queueLog, events: presence.state.events, cut: presence.playback.jitter.stats.cut,"
            " rate: presence.playback.sampleRate})"
        )
    interrupt = next(e for e in data["events"] if e["type"] == "interrupt")
    log = np.array(data["log"])
    before = log[log[:, 0] < interrupt["receivedAtMs"]]
    after = log[(log[:, 0] > interrupt["receivedAtMs"] + 60) & (log[:, 0] < interrupt["receivedAtMs"] + 350)]
    second = data["rate"]
    assert before[:, 1].max() > second, "more than a second of reply audio was queued before the interruption"
    assert len(after) and after[:, 1].max() < second / 10, "queued audio past the cut was dropped"


def test_a_lost_connection_is_reported_and_re_established(tmp_path: Path, timit_dir: Path) -> None:
    audio, _ = compose(timit_dir, [("dr1-fvmh0/sa1", 1.0)])
    wav = write_wav(tmp_path / "q.wav", audio)
    with chromium(wav) as context:
        with presence_server(tmp_path, *SCRIPTED) as server:
            port = server.port
            page = open_page(context, server.url)
            wait_for(page, "() => presence.state.connection === 'open'", 15, "the session to open")
        message = wait_for(
            page,
            "() => presence.state.connection === 'reconnecting' && document.getElementById('status').textContent",
            10,
            "the page to notice the lost connection",
        )
        assert "reconnecting" in message
        with presence_server(tmp_path, *SCRIPTED, port=port):
            wait_for(page, "() => presence.state.connection === 'open'", 20, "the page to reconnect")


def test_without_microphone_permission_the_page_says_so(tmp_path: Path, timit_dir: Path) -> None:
    audio, _ = compose(timit_dir, [("dr1-fvmh0/sa1", 0.5)])
    wav = write_wav(tmp_path / "q.wav", audio)
    with presence_server(tmp_path, *SCRIPTED) as server, chromium(wav, grant_microphone=False) as context:
        page = open_page(context, server.url)
        text = wait_for(page, "() => document.getElementById('errors').textContent", 15, "an error message")
    assert "permission" in text.lower() and "microphone" in text.lower()


def test_a_server_error_event_is_shown(tmp_path: Path, timit_dir: Path) -> None:
    audio, _ = compose(timit_dir, [("dr1-fvmh0/sa1", 3.0)])
    wav = write_wav(tmp_path / "q.wav", audio)
    args = (*SCRIPTED, "--scripted-think-ms", "3000", "--reply-timeout-s", "0.3")
    with presence_server(tmp_path, *args) as server, chromium(wav) as context:
        page = open_page(context, server.url)
        text = wait_for(page, "() => document.getElementById('errors').textContent", 25, "the error to be shown")
    assert "server error" in text


@pytest.mark.local_models
def test_the_local_engine_answers_a_spoken_question_in_the_page(tmp_path: Path) -> None:
    # Asked in another voice than the engine's own (British eSpeak, slower and lower).
    question = "how do i get to the train station from here"
    speech = Espeak.instance().synthesize(question.capitalize() + "?", Voice("en", 150, 35))
    samples = resample(speech.samples, speech.sample_rate, 16_000)
    audio = (np.concatenate([np.zeros(8_000), samples, np.zeros(6 * 16_000)]) * 32767).astype(np.int16)
    wav = write_wav(tmp_path / "question.wav", audio)
    knowledge = str(REPO / "examples" / "concierge.md")
    with presence_server(tmp_path, "--engine", "local", "--knowledge", knowledge) as server, chromium(wav) as context:
        page = open_page(context, server.url)
        wait_for(page, "() => presence.state.connection === 'open'", 30, "the session to open")
        page.evaluate(PIXEL_PROBE)
        turn = wait_for(
            page,
            "() => [...presence.turns.values()]"
            ".find(t => t.server && t.server.agent_text && t.firstMouthPerfMs !== undefined)",
            60,
            "a spoken reply from the local engine",
        )
        data = page.evaluate(
            "() => ({pixels: window.mouthPixels, played: presence.playback.jitter.stats.played,"
            " transcript: document.body.innerText})"
        )
    assert not page.errors, page.errors
    assert data["played"] > 0
    heard = turn["server"]["user_text"].lower()
    assert {"train", "station", "here"} <= set(heard.replace("?", " ").replace(",", " ").split()), heard
    reply = turn["server"]["agent_text"]
    assert on_topic(question, reply), f"off-topic reply to {heard!r}: {reply!r}"
    pixels = np.array(data["pixels"])
    during = pixels[pixels[:, 0] > turn["firstHeardPerfMs"]]
    assert len(during) and during[:, 1].max() > 100, "the mouth opened while the reply played"
