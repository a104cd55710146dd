"""A user-supplied GLB head in real headless Chromium: three.js from the npm registry, morph
targets named in either convention driven one to one by the streamed weights."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from presence.bench.g2g import LEAD_S
from tests.web.browser import Server, chromium, compose, presence_server, write_wav
from tests.web.glb_head import CAVITY, write_head_glb
from tests.web.test_browser import SCRIPTED, open_page, wait_for

pytestmark = pytest.mark.browser

# After every rendered frame, count cavity-coloured pixels on the WebGL canvas.
PIXEL_PROBE = """([r, g, b]) => {
  const gl = document.getElementById("avatar3d");
  const copy = document.createElement("canvas");
  copy.width = gl.width; copy.height = gl.height;
  const ctx = copy.getContext("2d", { willReadFrequently: true });
  window.mouthPixels = [];
  const probe = () => {
    ctx.drawImage(gl, 0, 0);
    const d = ctx.getImageData(0, 0, copy.width, copy.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (Math.abs(d[i] - r) < 8 && Math.abs(d[i + 1] - g) < 8 && Math.abs(d[i + 2] - b) < 8) n++;
    }
    window.mouthPixels.push([performance.now(), n]);
    requestAnimationFrame(probe);
  };
  requestAnimationFrame(probe);
}"""


def _three_served(server: Server) -> None:
    """Over HTTP, as the page asks for it: a file on disk the server will not serve (a
    symlinked node_modules once answered 404) must fail here, not as a blank head."""
    try:
        with urllib.request.urlopen(server.url + "node_modules/three/build/three.module.js", timeout=5) as answer:
            served = answer.status == 200
    except urllib.error.HTTPError:
        served = False
    if not served:
        pytest.fail("three.js is not served: run `make web-modules` (npm ci in presence/web)")


@pytest.mark.parametrize("convention", ["oculus15", "arkit"])
def test_a_glb_head_asks_for_its_own_weight_set_and_opens_its_mouth_only_while_the_reply_plays(
    tmp_path: Path, timit_dir: Path, convention: str
) -> None:
    glb = write_head_glb(tmp_path / "head.glb", convention)
    audio, _ = compose(timit_dir, [("dr1-fvmh0/sa1", 4.0)], lead_s=LEAD_S)
    wav = write_wav(tmp_path / "question.wav", audio)
    with presence_server(tmp_path, *SCRIPTED, "--avatar-glb", str(glb)) as server, chromium(wav) as context:
        _three_served(server)
        page = open_page(context, server.url)
        wait_for(page, "() => presence.state.connection === 'open'", 20, "the session to open")
        assert page.evaluate("() => presence.state.avatarKind") == "glb"
        assert page.evaluate("() => presence.state.agreement.weight_set.name") == convention
        page.evaluate(PIXEL_PROBE, list(CAVITY))
        turn = wait_for(
            page,
            "() => [...presence.turns.values()].find(t => t.server && t.firstMouthPerfMs !== undefined)",
            20,
            "a reply with a measured first mouth movement",
        )
        time.sleep(0.6)
        pixels = np.array(page.evaluate("() => window.mouthPixels"))
        rate = page.evaluate("() => presence.state.agreement.audio_out.sample_rate")
    assert not page.errors, page.errors
    heard = turn["firstHeardPerfMs"]
    reply_end = heard + (turn["server"]["reply_end_sample"] - turn["server"]["reply_start_sample"]) / (rate / 1000)
    during = pixels[(pixels[:, 0] > heard) & (pixels[:, 0] < reply_end)]
    before = pixels[pixels[:, 0] < heard - 100]
    after = pixels[pixels[:, 0] > reply_end + 150]
    assert len(during) and during[:, 1].max() > 200, "the head's mouth visibly opens while the reply plays"
    assert len(before) and before[:, 1].max() < 20, "shut before the reply"
    assert len(after) and after[:, 1].max() < 20, "shut after the reply"


def test_a_file_that_is_not_a_usable_head_is_reported_and_the_2d_face_is_drawn(tmp_path: Path, timit_dir: Path) -> None:
    bad = tmp_path / "head.glb"
    bad.write_bytes(b"not a GLB at all")
    audio, _ = compose(timit_dir, [("dr1-fvmh0/sa1", 1.0)], lead_s=LEAD_S)
    wav = write_wav(tmp_path / "question.wav", audio)
    with presence_server(tmp_path, *SCRIPTED, "--avatar-glb", str(bad)) as server, chromium(wav) as context:
        page = open_page(context, server.url)
        wait_for(page, "() => presence.state.connection === 'open'", 20, "the session to open")
        kind = page.evaluate("() => presence.state.avatarKind")
        shown = page.evaluate("() => document.getElementById('errors').textContent")
        visible = page.evaluate("() => !document.getElementById('avatar').hidden")
    assert kind == "2d" and visible
    assert "could not show the 3D head" in shown
