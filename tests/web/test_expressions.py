"""The default 3D head and the expression cues in real headless Chromium (SwiftShader WebGL)
against a real `presence serve` (scripted engine): what is drawn is read back, as cavity
pixels on the WebGL canvas and as the morph weights the head was rendered with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from presence.bench.g2g import LEAD_S
from presence.head import CAVITY
from tests.web.browser import chromium, compose, presence_server, write_wav
from tests.web.test_browser import PIXEL_PROBE as PIXEL_PROBE_2D
from tests.web.test_browser import SCRIPTED, open_page, wait_for
from tests.web.test_glb_avatar import PIXEL_PROBE as PIXEL_PROBE_3D

pytestmark = pytest.mark.browser

# After every rendered frame: the morph weights the 3D head was drawn with, and how many
# pixels differ from the background (the head is there at all).
WEIGHT_PROBE = """() => {
  window.shown = [];
  const probe = () => {
    const w = presence.avatar.weightsShown || {};
    const at = (name) => w[name] ?? 0;
    const names = ["mouthSmileLeft", "browOuterUpLeft", "browInnerUp", "jawOpen"];
    window.shown.push([performance.now(), ...names.map(at)]);
    requestAnimationFrame(probe);
  };
  requestAnimationFrame(probe);
}"""

# Pixels of the WebGL canvas that differ from the page's background: the head is drawn.
DRAWN = """() => {
  const gl = document.getElementById("avatar3d");
  const copy = document.createElement("canvas");
  copy.width = gl.width; copy.height = gl.height;
  const ctx = copy.getContext("2d");
  ctx.drawImage(gl, 0, 0);
  const d = ctx.getImageData(0, 0, copy.width, copy.height).data;
  let drawn = 0;
  const [r, g, b] = [0x1d, 0x24, 0x30];
  const far = (i) => Math.abs(d[i] - r) + Math.abs(d[i + 1] - g) + Math.abs(d[i + 2] - b) > 30;
  for (let i = 0; i < d.length; i += 4) if (far(i)) drawn++;
  return drawn;
}"""


def _reply(tmp: Path, timit: Path, reply: str, extra_args: tuple[str, ...] = ()) -> tuple[dict[str, Any], Any]:
    """Ask one question with the default face; returns the turn and the page's probe data."""
    audio, _ = compose(timit, [("dr1-fvmh0/sa1", 3.0)], lead_s=LEAD_S)
    wav = write_wav(tmp / "question.wav", audio)
    with (
        presence_server(tmp, *SCRIPTED, "--scripted-reply", reply) as server,
        chromium(wav, extra_args=extra_args) as ctx,
    ):
        page = open_page(ctx, server.url, face="default")
        wait_for(page, "() => presence.state.connection === 'open'", 20, "the session to open")
        kind = page.evaluate("() => presence.state.avatarKind")
        if kind == "head":
            page.evaluate(PIXEL_PROBE_3D, list(CAVITY))
            page.evaluate(WEIGHT_PROBE)
        else:
            page.evaluate(PIXEL_PROBE_2D)
        turn = wait_for(
            page,
            "() => [...presence.turns.values()].find(t => t.server && t.firstMouthPerfMs !== undefined)",
            25,
            "a reply with a measured first mouth movement",
        )
        end_sample = turn["server"]["reply_end_sample"]
        wait_for(
            page,
            "() => { const last = presence.frames.findLast(f => f.ts !== null);"
            " return last && presence.state.turnState === 'listening' && performance.now() - last.perfMs > 1200; }",
            20,
            "the reply to play out and the face to relax",
        )
        drawn = page.evaluate(DRAWN) if kind == "head" else 0
        data = page.evaluate(
            """() => ({kind: presence.state.avatarKind, pixels: window.mouthPixels, shown: window.shown || [],
                 rate: presence.state.agreement.audio_out.sample_rate, features: presence.state.agreement.features,
                 cues: presence.state.events.filter(e => e.type === 'expression'),
                 visible2d: !document.getElementById('avatar').hidden,
                 played: presence.frames.filter(f => f.ts !== null).map(f => [f.perfMs, f.ts])})"""
        )
    data["drawn"] = drawn
    assert not page.errors, page.errors
    # When the reply's first and last samples were heard, on the page's clock (playback may
    # stretch under load, so the end is read from the frames, not computed from the length).
    data["heard"] = turn["firstHeardPerfMs"]
    played = np.array(data["played"])
    within = played[(played[:, 1] >= turn["server"]["reply_start_sample"]) & (played[:, 1] <= end_sample)]
    data["end"] = float(within[:, 0].max())
    print(
        f"reply heard for {data['end'] - data['heard']:.0f} ms; last sample heard {within[:, 1].max() - end_sample:.0f}"
    )
    return turn, data


def test_the_default_3d_head_renders_speaks_only_while_the_reply_plays_and_smiles_before_a_happy_word(
    tmp_path: Path, timit_dir: Path
) -> None:
    _, d = _reply(tmp_path, timit_dir, "Wonderful, I love this idea!")
    assert d["kind"] == "head" and d["features"] == ["expressions"]
    assert [c["name"] for c in d["cues"]][:1] == ["happy"]
    shown = np.array(d["shown"])
    pixels = np.array(d["pixels"])
    heard, end = d["heard"], d["end"]
    assert d["drawn"] > 20_000, "the head is drawn (a blank canvas has none)"
    during = pixels[(pixels[:, 0] > heard) & (pixels[:, 0] < end)]
    assert len(during) and during[:, 1].max() > 150, "the mouth visibly opens while the reply plays"
    assert pixels[pixels[:, 0] < heard - 100][:, 1].max() < 20, "shut before the reply"
    assert pixels[pixels[:, 0] > end + 150][:, 1].max() < 20, "shut after the reply"
    before_reply = shown[shown[:, 0] < heard - 1000]
    lead_in = shown[(shown[:, 0] < heard) & (shown[:, 0] > heard - 1000)]
    assert before_reply[:, 1].max() < 0.05, "no smile while listening"
    smile_first = lead_in[lead_in[:, 1] > 0.1]
    assert len(smile_first), "the smile rises before the first word is heard"
    print(f"smile above 0.1 {heard - smile_first[0, 0]:.0f} ms before the first word was heard")
    assert shown[(shown[:, 0] > heard) & (shown[:, 0] < end)][:, 2].max() < 0.15, "a statement leaves the brows"


def test_a_question_raises_the_brows_of_the_3d_head(tmp_path: Path, timit_dir: Path) -> None:
    _, d = _reply(tmp_path, timit_dir, "Would you like to hear more about it?")
    assert [c["name"] for c in d["cues"]][:1] == ["curious"]
    shown = np.array(d["shown"])
    during = shown[(shown[:, 0] > d["heard"]) & (shown[:, 0] < d["end"])]
    assert during[:, 2].max() > 0.3 and during[:, 3].max() > 0.2, "brows up on the question"
    assert shown[shown[:, 0] > d["end"] + 500][:, 2].max() < 0.1, "and down again after the reply"


def test_without_webgl_the_2d_face_is_drawn_and_speaks(tmp_path: Path, timit_dir: Path) -> None:
    _, d = _reply(tmp_path, timit_dir, "Hello there.", extra_args=("--disable-webgl", "--disable-3d-apis"))
    assert d["kind"] == "2d" and d["visible2d"]
    pixels = np.array(d["pixels"])
    during = pixels[(pixels[:, 0] > d["heard"]) & (pixels[:, 0] < d["end"])]
    assert len(during) and during[:, 1].max() > 100, "the 2D mouth opens while the reply plays"
